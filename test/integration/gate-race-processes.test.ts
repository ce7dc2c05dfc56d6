// The same race as gate-race.test.ts, across two operating-system processes: a "worker" process takes the
// job's expiry path and an "app" process records a press, both through the built OpsStore (dist/), against
// the shared Redis, round after round at each gate's deadline. Redis judges the deadline on its own clock,
// so whichever reaches the gate's key first wins, and both processes must report that same outcome.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { OpsStore } from '../../src/jobs/store.js';

const ROUNDS = 40;
const STORE = new URL('../../dist/jobs/store.js', import.meta.url).href;

// Each side sleeps to its moment, then settles every round's gate the way its process would: the job
// polls until the gate is no longer pending; the press offers its decision once.
const SIDE = `
import { Redis } from 'ioredis';
const { OpsStore } = await import(process.env.STORE);
const [url, prefix, side, deadlinesJson] = process.argv.slice(1);
const store = new OpsStore(new Redis(url), prefix);
const out = [];
const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
for (const [i, deadline] of JSON.parse(deadlinesJson).entries()) {
  if (side === 'job') {
    await sleepUntil(deadline);
    for (;;) {
      const s = await store.settleGate('job-' + i, 'maintenance', deadline, undefined);
      if (s.kind !== 'pending') { out.push({ kind: s.kind, choice: s.decision.choice }); break; }
      await new Promise((r) => setTimeout(r, 2));
    }
  } else {
    await sleepUntil(deadline + ((i % 9) - 4));
    const s = await store.settleGate('job-' + i, 'maintenance', deadline, { choice: 'go', by: 'U02BOB', at: new Date().toISOString() });
    out.push({ kind: s.kind, choice: s.kind === 'pending' ? null : s.decision.choice });
  }
}
console.log(JSON.stringify(out));
process.exit(0);
`;

interface Seen {
  kind: string;
  choice: string | null;
}

function side(name: 'job' | 'press', prefix: string, deadlines: number[]): Promise<Seen[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SIDE, inject('redisUrl'), prefix, name, JSON.stringify(deadlines)], {
      env: { ...process.env, STORE },
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as Seen[]) : reject(new Error(`${name} side exited ${code}: ${stderr}`))));
  });
}

const redis = new Redis(inject('redisUrl'));
afterAll(() => redis.disconnect());

describe('gate expiry against a press at the deadline, from two processes', () => {
  it(`each of ${ROUNDS} rounds has one stored outcome, and the worker and the app process both act on it`, async () => {
    expect(existsSync(fileURLToPath(STORE)), 'dist/ is built (npm test builds it first)').toBe(true);
    const prefix = `race2p${randomBytes(4).toString('hex')}`;
    // Both processes need a moment to start and connect; the rounds begin after that, 25 ms apart.
    const start = Date.now() + 1500;
    const deadlines = Array.from({ length: ROUNDS }, (_, i) => start + i * 25);
    const [job, press] = await Promise.all([side('job', prefix, deadlines), side('press', prefix, deadlines)]);
    const store = new OpsStore(redis, prefix);
    const won = { press: 0, expiry: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const stored = await store.readGate(`job-${i}`, 'maintenance');
      expect(stored, `round ${i}`).toBeDefined();
      // The worker acts on what is stored, whichever process stored it.
      expect(job[i]!.choice, `round ${i}: the job acts on the stored outcome`).toBe(stored!.choice);
      if (stored!.choice === 'expired') {
        won.expiry++;
        expect(press[i]!.kind, `round ${i}: the press was not recorded`).not.toBe('decided');
        expect(press[i]!.choice, `round ${i}: the presser is told it expired`).toBe('expired');
      } else {
        won.press++;
        expect(stored, `round ${i}`).toMatchObject({ choice: 'go', by: 'U02BOB' });
        expect(press[i], `round ${i}: the press was recorded`).toEqual({ kind: 'decided', choice: 'go' });
      }
    }
    // Both orders happened, so the processes really raced.
    expect(won.press).toBeGreaterThan(0);
    expect(won.expiry).toBeGreaterThan(0);
  }, 60_000);
});
