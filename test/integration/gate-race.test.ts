// A gate's expiry and a press at its deadline cannot both win. The job's expiry path (gateStatus) and a press
// (handleAction, the same function Slack's listener calls) race on two Redis connections, as two processes would,
// round after round around the deadline; each round exactly one outcome is stored, the job acts on it, and the
// presser is told that same one.
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Access } from '../../src/commands/access.js';
import { handleAction, type ActionDeps } from '../../src/commands/actions.js';
import { loadConfig } from '../../src/config/load.js';
import { OpsStore } from '../../src/jobs/store.js';
import { createLogger } from '../../src/logger.js';
import { encodeGateValue } from '../../src/render/deploy.js';
import { gateStatus, type GateStatus } from '../../src/runbooks/gates.js';
import type { Gate } from '../../src/runbooks/types.js';
import type { StepContext, RunbookData } from '../../src/runbooks/kernel/types.js';

const ROUNDS = 60;
const prefix = `race${randomBytes(4).toString('hex')}`;
const jobSide = new Redis(inject('redisUrl'));
const pressSide = new Redis(inject('redisUrl'));
afterAll(() => {
  jobSide.disconnect();
  pressSide.disconnect();
});

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

function round(i: number, deadline: number) {
  const gate: Gate = {
    id: 'maintenance',
    kind: 'maintenance',
    go: 'maintenance.enable',
    noGo: 'maintenance.skip',
    question: 'Enable maintenance?',
    createdAt: new Date(deadline - 60_000).toISOString(),
    expiresAt: new Date(deadline).toISOString(),
    planHash: `h${i}`,
  };
  const data = {
    kind: 'deploy',
    jobId: `deploy-race-${i}`,
    env: 'production',
    version: '0.6.1',
    maintenance: undefined,
    dryRun: false,
    origin: { transport: 'slack', channel: 'C0OPS', user: 'U01ALICE' },
    requestedAt: new Date().toISOString(),
    state: { steps: [], outcome: 'waiting', gates: { maintenance: gate }, warnings: [], startedAt: new Date().toISOString() },
  } as RunbookData;
  return { gate, data };
}

describe('gate expiry against a press at the deadline', () => {
  it(`exactly one outcome wins each of ${ROUNDS} rounds, and the job and the presser both act on it`, async () => {
    const log = createLogger({ level: 'silent' });
    const config = loadConfig(fileURLToPath(new URL('../fixtures/config/valid.yml', import.meta.url)));
    const jobStore = new OpsStore(jobSide, prefix);
    const pressStore = new OpsStore(pressSide, prefix);
    const seen = { pressWon: 0, expiryWon: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const deadline = Date.now() + 40;
      const { gate, data } = round(i, deadline);
      const job = { data, getState: async () => 'delayed', promote: async () => undefined };
      const deps: ActionDeps = {
        config,
        access: new Access(undefined, log),
        producer: { getJob: async () => job, store: pressStore, enqueue: async () => ({ jobId: '' }), ready: async () => undefined } as never,
        log,
      };
      // The job wakes at its deadline, as BullMQ's delayed job would; the press lands a few ms either side of it.
      const jobPath = (async (): Promise<GateStatus> => {
        await sleepUntil(deadline);
        const ctx = { data, store: jobStore } as unknown as StepContext;
        for (;;) {
          const st = await gateStatus(ctx, { ...gate });
          if (st.kind !== 'pending') return st;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const pressPath = (async () => {
        await sleepUntil(deadline + ((i % 9) - 4));
        return handleAction({ actionId: 'maintenance.enable', value: encodeGateValue({ j: data.jobId, g: gate.id, h: gate.planHash }), user: 'U02BOB', channel: 'C0OPS', transport: 'slack' }, deps);
      })();
      const [st, pressed] = await Promise.all([jobPath, pressPath]);
      // The job and the presser must agree on what happened…
      expect(pressed.replace !== undefined, `round ${i}: the press was acted on, so the job must act on it too (job saw ${st.kind})`).toBe(st.kind === 'decided');
      // …and it is what Redis holds: the expiry is recorded too, not only decided in the job's memory.
      const stored = await jobStore.readGate(data.jobId, gate.id);
      expect(stored, `round ${i}`).toBeDefined();
      if (stored!.choice === 'expired') {
        seen.expiryWon++;
        expect(st, `round ${i}: the job acts on the stored expiry`).toEqual({ kind: 'expired' });
        expect(pressed.replace, `round ${i}: the press must not be acted on`).toBeUndefined();
        expect(pressed.ephemeral?.summary, `round ${i}: the presser is told it expired`).toMatch(/expired/);
      } else {
        seen.pressWon++;
        expect(stored, `round ${i}`).toMatchObject({ choice: 'go', by: 'U02BOB' });
        expect(st, `round ${i}: the job acts on the press`).toMatchObject({ kind: 'decided', decision: { choice: 'go', by: 'U02BOB' } });
        expect(pressed.replace, `round ${i}: the presser sees the decision`).toBeDefined();
      }
    }
    // Both orders happened, so the race was really run.
    expect(seen.pressWon).toBeGreaterThan(0);
    expect(seen.expiryWon).toBeGreaterThan(0);
  }, 60_000);
});
