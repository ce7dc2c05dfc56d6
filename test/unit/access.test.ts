import { describe, expect, it } from 'vitest';
import { Access } from '../../src/commands/access.js';
import { createLogger } from '../../src/logger.js';

function logger(lines: string[]) {
  return createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } });
}

describe('Access', () => {
  it('asks Slack once for a burst of commands that find the group uncached', async () => {
    let calls = 0;
    let answer!: (members: string[]) => void;
    const access = new Access(
      () => {
        calls++;
        return new Promise<string[]>((r) => (answer = r));
      },
      logger([]),
    );
    const burst = Array.from({ length: 10 }, (_, i) => access.has(i % 2 ? 'U01ALICE' : 'U09EVE', ['S0DEPLOYERS']));
    await Promise.resolve();
    answer(['U01ALICE']);
    expect(await Promise.all(burst)).toEqual(Array.from({ length: 10 }, (_, i) => i % 2 === 1));
    expect(calls).toBe(1);
    expect(await access.has('U01ALICE', ['S0DEPLOYERS'])).toBe(true);
    expect(calls).toBe(1);
  });

  it('fails closed for the whole burst when the group cannot be read, logs once, and asks again next time', async () => {
    let calls = 0;
    const lines: string[] = [];
    const access = new Access(async () => {
      calls++;
      throw new Error('ratelimited');
    }, logger(lines));
    expect(await Promise.all([access.has('U01ALICE', ['S0DEPLOYERS']), access.has('U01ALICE', ['S0DEPLOYERS'])])).toEqual([false, false]);
    expect(calls).toBe(1);
    expect(lines.filter((l) => l.includes('could not read user-group members'))).toHaveLength(1);
    expect(await access.has('U01ALICE', ['S0DEPLOYERS'])).toBe(false);
    expect(calls).toBe(2);
  });
});
