// What the real-host tests do through the bot (press buttons, confirm modals, wait for cards) and
// how they read the real host afterwards (real `docker compose`, real psql, real alembic).
import { afterAll, afterEach, expect } from 'vitest';
import { OPS_CHANNEL } from '../world/config.js';
import { findButton, sendBlockAction, sendViewSubmission } from '../world/slack-requests.js';
import { SIGNING_SECRET, type RealBotWorld } from './bot-world.js';
import { API_SERVICE, DB_SERVICE } from './deploy-host.js';
import type { Vm } from './vm.js';

export const BOB = 'U02BOB';

export function text(blocks: unknown): string {
  return JSON.stringify(blocks ?? []);
}

/** Production is four-eyes: Bob approves Alice's plan before the first change on the host. */
export async function approvePlan(w: RealBotWorld): Promise<void> {
  const msg = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).findLast((m) => findButton(m.blocks as never, 'deploy.approve')), { timeoutMs: 180_000, description: 'deploy.approve' });
  expect((await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: msg, action_id: 'deploy.approve' })).status).toBe(200);
}

/** Bob presses downgrade.confirm and confirms in the modal the bot opens; returns the gate message and the modal. */
export async function confirmDowngrade(w: RealBotWorld) {
  const before = w.slack.views.length;
  const gate = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as never, 'downgrade.confirm')), { timeoutMs: 240_000, description: 'downgrade.confirm' });
  const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'downgrade.confirm', trigger_id: w.slack.triggerId() });
  expect(res.status).toBe(200);
  const modal = await w.slack.waitFor(() => (w.slack.views.length > before ? w.slack.views.at(-1) : undefined), { timeoutMs: 10_000, description: 'the confirmation modal' });
  expect((await sendViewSubmission(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, view: modal.view })).status).toBe(200);
  return { gate, modal };
}

/** The job's top-level card once it names an outcome. */
export async function finalCard(w: RealBotWorld, title: string, outcome: RegExp, timeoutMs = 300_000) {
  return w.slack.waitFor(
    () => {
      const card = w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes(title));
      return card && outcome.test(text(card.blocks)) ? card : undefined;
    },
    { timeoutMs, description: `card "${title}" matching ${outcome}` },
  );
}

export async function must(what: string, p: ReturnType<Vm['exec']>): Promise<string> {
  const r = await p;
  expect(r.code, `${what}: ${r.output}`).toBe(0);
  return r.stdout;
}

export interface PsRow {
  Service: string;
  State: string;
  Status: string;
  Image: string;
  ID: string;
}

/** The real `docker compose ps -a --format json` (Compose 2.26: one object per line). */
export async function psRows(vm: Vm): Promise<PsRow[]> {
  const out = await must('compose ps', vm.compose(['ps', '-a', '--format', 'json']));
  return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as PsRow);
}

/** `alembic current` in a one-off container of `tag` (works whatever the service's container does). */
export async function alembicCurrent(vm: Vm, tag: string): Promise<string> {
  return (await must('alembic current', vm.compose(['run', '--rm', '--no-deps', '-T', API_SERVICE, 'alembic', 'current'], { env: { IMAGE_TAG: tag } }))).trim();
}

/** One value from the real database. */
export async function psql(vm: Vm, sql: string): Promise<string> {
  return (await must(`psql ${sql}`, vm.compose(['exec', '-T', DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-At', '-c', sql]))).trim();
}

/** Whether `table.column` exists in the real database (column null: the table). */
export async function exists(vm: Vm, table: string, column: string | null = null): Promise<boolean> {
  const sql = column
    ? `SELECT count(*) FROM information_schema.columns WHERE table_name='${table}' AND column_name='${column}'`
    : `SELECT count(*) FROM information_schema.tables WHERE table_name='${table}'`;
  return (await psql(vm, sql)) !== '0';
}

/**
 * The end of a test file with a bot on its own deploy folder: the bot's log when a test fails, then
 * the bot, the Compose project (with its volumes) and the SSH connection closed.
 */
export function tearDownAfterFile(get: () => { w?: RealBotWorld; vm?: Vm }, logLines = 60): void {
  afterEach(async (ctx) => {
    const { w } = get();
    if (ctx.task.result?.state === 'fail' && w) console.error(`--- bot log (last ${logLines}) ---\n${w.logs.slice(-logLines).join('')}`);
  });
  afterAll(async () => {
    const { w, vm } = get();
    await w?.close();
    await vm?.compose(['down', '-v'], { timeoutMs: 120_000 });
    await vm?.close();
  });
}

/** The one snapshot in the deploy folder, as the real `pg_restore -l` lists it (and complains of nothing). */
export async function listOnlySnapshot(vm: Vm): Promise<{ dump: string; listing: string }> {
  const dumps = (await must('ls', vm.exec({ argv: ['sh', '-c', 'ls pre_rollback_*.dump'] }))).trim().split('\n');
  expect(dumps).toHaveLength(1);
  expect(dumps[0]).toMatch(/^pre_rollback_\d{12}\.dump$/);
  const listed = await vm.exec({ argv: ['sh', '-c', `docker compose -f docker-compose.prod.yml exec -T ${DB_SERVICE} pg_restore -l < "$1"`, 'sh', dumps[0]!] });
  expect(listed.code, listed.output).toBe(0);
  expect(listed.stderr.trim()).toBe('');
  return { dump: dumps[0]!, listing: listed.stdout };
}
