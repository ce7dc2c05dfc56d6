import { fileURLToPath } from 'node:url';
import { LogLevel as WebLogLevel, WebClient } from '@slack/web-api';
import { afterEach, describe, expect, it } from 'vitest';
import { Access } from '../../src/commands/access.js';
import { handleCommand } from '../../src/commands/handle.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { startFakeSlack, type FakeSlack } from '../world/fake-slack.js';

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

describe('Access: user groups while Slack cannot be asked', () => {
  const TTL = 5 * 60_000;
  let fake: FakeSlack | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  /** The resolver the bot uses (src/runtime.ts), against the fake Slack's usergroups.users.list. */
  async function groupsFromFakeSlack() {
    fake = await startFakeSlack({ limits: false, userGroups: { S0OPSLEADS: ['U05DAVE'] } });
    const client = new WebClient(fake.botToken, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 }, logLevel: WebLogLevel.ERROR });
    return async (usergroup: string) => ((await client.usergroups.users.list({ usergroup })).users as string[] | undefined) ?? [];
  }

  it('uses the last list for at most twice the cache lifetime, then refuses members and says why', async () => {
    const lines: string[] = [];
    let now = 1_000_000;
    const access = new Access(await groupsFromFakeSlack(), logger(lines), { ttlMs: TTL, now: () => now });
    expect(await access.check('U05DAVE', ['S0OPSLEADS'])).toEqual({ ok: true });

    fake!.injectFault({ method: 'usergroups.users.list', error: 'internal_error', times: Infinity });
    now += TTL + 1_000;
    expect(await access.check('U05DAVE', ['S0OPSLEADS'])).toEqual({ ok: true });
    expect(lines.at(-1)).toContain('using the list read earlier');
    expect(lines.at(-1)).not.toContain('refused');

    now += TTL - 2_000;
    // 2 × TTL - 1 s old: still used.
    expect(await access.check('U05DAVE', ['S0OPSLEADS'])).toEqual({ ok: true });
    now += 1_000;
    expect(await access.check('U05DAVE', ['S0OPSLEADS'])).toEqual({ ok: false, unreadGroups: ['S0OPSLEADS'] });
    expect(lines.at(-1)).toContain('too old to trust; members of the group are refused');
    expect(await access.has('U09EVE', ['S0OPSLEADS', 'U01ALICE'])).toBe(false);

    // Slack answers again: members are members again, from a fresh list.
    fake!.clearFaults();
    expect(await access.check('U05DAVE', ['S0OPSLEADS'])).toEqual({ ok: true });
  });

  it('a command refused for an unreadable group says so, not "only deployers"', async () => {
    const access = new Access(async () => {
      throw new Error('ratelimited');
    }, logger([]));
    const config = loadConfig(fileURLToPath(new URL('../fixtures/config/valid.yml', import.meta.url)));
    const msg = await handleCommand(
      { text: 'deploy 0.6.1', origin: { transport: 'slack', channel: 'C0OPS', user: 'U05DAVE' } },
      { config: { ...config, access: { ...config.access, deployers: ['S0DEPLOYERS'] } }, access, producer: { store: { appendAudit: async () => undefined } } as never, log: logger([]) },
    );
    const shown = JSON.stringify(msg);
    expect(shown).toContain('Slack could not be asked who is in S0DEPLOYERS');
    expect(shown).not.toContain('Only deployers');
  });
});
