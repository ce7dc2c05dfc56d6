import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Access } from '../../src/commands/access.js';
import { handleAction } from '../../src/commands/actions.js';
import { loadConfig } from '../../src/config/load.js';
import { alignSteps } from '../../src/jobs/runbook-job.js';
import type { GateSettlement } from '../../src/jobs/store.js';
import { createLogger } from '../../src/logger.js';
import { encodeGateValue } from '../../src/render/deploy.js';
import { FIRST_CHANGE, RUNBOOKS, type RunbookKind } from '../../src/runbooks/catalog.js';
import type { StepContext, RunbookData } from '../../src/runbooks/kernel/types.js';
import { FOUR_EYES_STEP, secondPersonDecision } from '../../src/runbooks/gates.js';
import type { Gate } from '../../src/runbooks/types.js';
import type { GateDecision, GateKind } from '../../src/runbooks/types.js';

/** Steps that only read, log in, pull, snapshot or ask: nothing that runs or is stored on the host changes. */
// `registry-logout` removes only the bot's own credential folder; `inspect-target` reads alembic of the target image (pulling it if absent).
const BEFORE_ANY_CHANGE = new Set(['approval', 'preflight', 'login', 'pull', 'registry-logout', 'inspect', 'inspect-target', 'maintenance-decision', 'prepare', 'resolve']);

function gate(kind: GateKind, decision?: GateDecision): Gate {
  return { id: kind, kind, go: 'deploy.approve', noGo: 'deploy.cancel', question: `${kind}?`, createdAt: '', expiresAt: '', planHash: 'h', ...(decision ? { decision } : {}) };
}

const data = { jobId: 'deploy-1', env: 'production', version: '0.6.1', origin: { transport: 'slack', channel: 'C0OPS', user: 'U01ALICE' } } as RunbookData;

describe('four-eyes in the runbook catalog', () => {
  for (const kind of Object.keys(RUNBOOKS) as RunbookKind[]) {
    it(`${kind}: the check comes right before the first change, and only harmless steps come before it`, () => {
      const ids = RUNBOOKS[kind].steps.map((s) => s.id);
      const at = ids.indexOf(FOUR_EYES_STEP);
      expect(ids.filter((id) => id === FOUR_EYES_STEP)).toHaveLength(1);
      expect(ids[at + 1]).toBe(FIRST_CHANGE[kind]);
      // A new step before the first change must be added here on purpose, after checking that it changes nothing.
      expect(ids.slice(0, at).filter((id) => !BEFORE_ANY_CHANGE.has(id))).toEqual([]);
    });
  }

  it('counts a decision about the change by someone else; not an expiry, not the requester, not a step retry', () => {
    const at = '2026-01-01T00:00:00.000Z';
    expect(secondPersonDecision(data, { m: gate('maintenance', { choice: 'expired', at }) })).toBeUndefined();
    expect(secondPersonDecision(data, { m: gate('maintenance', { choice: 'go', by: 'U01ALICE', at }) })).toBeUndefined();
    expect(secondPersonDecision(data, { s: gate('step', { choice: 'go', by: 'U02BOB', at }) })).toBeUndefined();
    expect(secondPersonDecision(data, { r: gate('rollback', { choice: 'go', by: 'U02BOB', at }) })).toBeUndefined();
    expect(secondPersonDecision(data, { m: gate('maintenance') })).toBeUndefined();
    // "Deploy without maintenance" is a decision about this change too.
    expect(secondPersonDecision(data, { m: gate('maintenance', { choice: 'no-go', by: 'U02BOB', at }) })).toMatchObject({ by: 'U02BOB' });
    expect(secondPersonDecision(data, { d: gate('downgrade', { choice: 'go', by: 'U03CAROL', at }) })).toMatchObject({ by: 'U03CAROL' });
  });

  it('is skipped where fourEyes is off, and passes on a maintenance answer by someone else', async () => {
    const step = RUNBOOKS.deploy.steps.find((s) => s.id === FOUR_EYES_STEP)!;
    const ctx = (fourEyes: boolean, gates: Record<string, Gate>) => ({ data, env: { fourEyes }, state: { gates } }) as unknown as StepContext;
    const rec = { id: FOUR_EYES_STEP, title: '', status: 'pending' as const };
    expect(await step.run(ctx(false, {}), rec)).toMatchObject({ status: 'skipped' });
    const decided = { maintenance: gate('maintenance', { choice: 'go', by: 'U02BOB', at: '2026-01-01T00:00:00.000Z' }) };
    expect(await step.run(ctx(true, decided), rec)).toMatchObject({ status: 'done', note: 'U02BOB decided "maintenance?"' });
  });
});

describe('buttons and the health watch channel', () => {
  it('a press from an environment watch channel counts as allowed; another channel does not', async () => {
    const log = createLogger({ level: 'silent' });
    const base = loadConfig(fileURLToPath(new URL('../fixtures/config/valid.yml', import.meta.url)));
    const prod = base.environments['production']!;
    const config = { ...base, environments: { ...base.environments, production: { ...prod, watch: { every: '5m', everyMs: 300_000, rollbackWindow: '30m', rollbackWindowMs: 1_800_000, channel: 'C0WATCH' } } } };
    const g = { ...gate('maintenance'), go: 'maintenance.enable', noGo: 'maintenance.skip', expiresAt: new Date(Date.now() + 60_000).toISOString() };
    const job = { data: { ...data, state: { steps: [], outcome: 'waiting', gates: { maintenance: g }, warnings: [], startedAt: '' } }, getState: async () => 'delayed', promote: async () => undefined };
    const stored: GateDecision[] = [];
    const store = {
      readGate: async () => undefined,
      settleGate: async (_j: string, _g: string, _d: number, decision: GateDecision): Promise<GateSettlement> => (stored.push(decision), { kind: 'decided', decision }),
      appendAudit: async () => undefined,
    };
    const deps = { config, access: new Access(undefined, log), producer: { getJob: async () => job, store } as never, log };
    const press = (channel: string) => handleAction({ actionId: 'maintenance.enable', value: encodeGateValue({ j: data.jobId, g: 'maintenance', h: 'h' }), user: 'U02BOB', channel, transport: 'slack' }, deps);
    expect((await press('C0ELSEWHERE')).ephemeral?.summary).toContain('Buttons are not accepted in this channel');
    expect(stored).toEqual([]);
    expect((await press('C0WATCH')).replace).toBeDefined();
    expect(stored).toMatchObject([{ choice: 'go', by: 'U02BOB' }]);
  });
});

describe('a job saved before the four-eyes step existed', () => {
  const d = { ...data, kind: 'deploy', maintenance: undefined, dryRun: false, requestedAt: '' } as RunbookData;
  const oldIds = RUNBOOKS.deploy.steps.map((s) => s.id).filter((id) => id !== FOUR_EYES_STEP);
  const oldState = (upTo: number, last: 'done' | 'running') => ({
    steps: oldIds.map((id, i) => ({ id, title: id, status: i < upTo ? ('done' as const) : i === upTo ? last : ('pending' as const) })),
    outcome: 'waiting' as const,
    gates: {},
    warnings: [],
    startedAt: '',
  });

  it('gets its records re-paired by id: the new check runs if the job has not passed it yet', () => {
    const state = oldState(oldIds.indexOf('maintenance-decision'), 'running');
    alignSteps(state, RUNBOOKS.deploy.steps, d);
    expect(state.steps.map((s) => s.id)).toEqual(RUNBOOKS.deploy.steps.map((s) => s.id));
    expect(state.steps.find((s) => s.id === FOUR_EYES_STEP)).toMatchObject({ status: 'pending' });
    expect(state.steps.find((s) => s.id === 'maintenance-decision')).toMatchObject({ status: 'running' });
  });

  it('and is skipped, not run in the middle, where the job is already past it', () => {
    const state = oldState(oldIds.indexOf('migrate'), 'running');
    alignSteps(state, RUNBOOKS.deploy.steps, d);
    expect(state.steps.find((s) => s.id === FOUR_EYES_STEP)).toMatchObject({ status: 'skipped' });
    expect(state.steps.find((s) => s.id === 'up')).toMatchObject({ status: 'done' });
    expect(state.steps.find((s) => s.id === 'migrate')).toMatchObject({ status: 'running' });
  });
});
