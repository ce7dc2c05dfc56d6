import type { Config } from '../config/load.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Producer } from '../jobs/queue.js';
import type { HistoryEntry } from '../jobs/store.js';
import { isReadJobName, type Origin, type ReadJobName } from '../jobs/types.js';
import { describeError, errorParts } from '../render/errors.js';
import { code, esc, mention, type Msg, type Part } from '../render/model.js';
import { randomBytes } from 'node:crypto';
import { audit, auditText, via } from '../audit.js';
import { historyMsg } from '../render/history.js';
import { helpMsg as renderHelp } from '../render/help.js';
import { unreadGroupsHint, type Access } from './access.js';
import { parseCommand, type Command } from './grammar.js';
import { ago } from './time.js';
import { SPECS, specOf } from './specs.js';

export interface CommandRequest {
  text: string;
  origin: Origin;
}

export interface CommandDeps {
  config: Config;
  access: Access;
  producer: Pick<Producer, 'enqueue' | 'store' | 'ready' | 'getJob'>;
  log: Logger;
  metrics?: Metrics;
}

/** Who may run what is read from the live config, so help never disagrees with a refusal. */
export function helpMsg(config: Pick<Config, 'access' | 'slack' | 'environments' | 'defaultEnv'>): Msg {
  return renderHelp({ commands: SPECS, access: config.access, allowedChannels: config.slack.allowedChannels, envNames: Object.keys(config.environments), defaultEnv: config.defaultEnv });
}

function checkChannel(config: Config, origin: Origin): void {
  const allowed = config.slack.allowedChannels;
  if (origin.transport === 'console' || allowed.length === 0 || allowed.includes(origin.channel)) return;
  const dm = origin.channel.startsWith('D');
  throw new ChatOpsError(ErrorCode.ChannelNotAllowed, dm ? 'Commands are not accepted in direct messages.' : 'Commands are not accepted in this channel.', { allowed });
}

async function checkRole(config: Config, access: Access, command: Command, user: string): Promise<void> {
  const spec = specOf(command.name);
  // cancel is checked against the job itself: its requester, or an admin.
  if (!spec.mutating || command.name === 'cancel') return;
  // As the contract has it: deployers change hosts, admins unlock; being an admin does not make one a deployer.
  const list = command.name === 'unlock' ? config.access.admins : config.access.deployers;
  const answer = await access.check(user, list);
  if (answer.ok) return;
  const who = command.name === 'unlock' ? 'admins (access.admins)' : 'deployers (access.deployers)';
  throw new ChatOpsError(ErrorCode.Forbidden, `You may not run \`${command.name}\`.`, { who: answer.unreadGroups.length > 0 ? unreadGroupsHint(answer.unreadGroups) : `Only ${who} may run it.` });
}

/** The fallback `text` is shown raw in notifications: strip the mrkdwn. */
function plainText(mrkdwn: string): string {
  return mrkdwn.replace(/[*`_]/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function reply(summary: string, parts: Part[], notes: string[] = []): Msg {
  return { summary, parts: [...notes.map((n): Part => ({ type: 'context', items: [`ℹ️ ${n}`] })), ...parts] };
}


export function newJobId(kind: string): string {
  return `${kind}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/**
 * Queues a deploy or rollback. It takes the environment lock first, so a second
 * mutating job is refused at once, naming the holder; a dry run takes no lock.
 */
export async function startRunbook(
  p: { kind: 'deploy' | 'rollback' | 'maintenance' | 'migrate' | 'upgrade'; version: string; env: string; maintenance?: boolean | undefined; dryRun: boolean; origin: Origin },
  producer: CommandDeps['producer'],
  log: Logger,
): Promise<string> {
  const jobId = newJobId(p.kind);
  const data = {
    kind: p.kind,
    jobId,
    env: p.env,
    version: p.version,
    maintenance: p.kind === 'rollback' ? true : p.maintenance,
    dryRun: p.dryRun,
    origin: p.origin,
    requestedAt: new Date().toISOString(),
  };
  if (p.dryRun) {
    await producer.enqueue(data, { jobId });
    return jobId;
  }
  await producer.ready();
  const holder = { jobId, user: p.origin.user, ...via(p.origin), command: p.kind === 'maintenance' ? `maintenance ${p.maintenance ? 'on' : 'off'}` : p.kind === 'migrate' ? `migrate downgrade ${p.version}` : p.kind === 'upgrade' ? 'migrate upgrade' : `${p.kind} ${p.version}`, startedAt: data.requestedAt, channel: p.origin.channel };
  const lock = await producer.store.acquireLock(p.env, holder, DEPLOY_LOCK_TTL_MS).catch((err: unknown) => {
    throw new ChatOpsError(ErrorCode.QueueUnavailable, 'queue unavailable', {}, { cause: err });
  });
  if (!lock.ok) {
    const h = lock.holder;
    throw new ChatOpsError(
      ErrorCode.Locked,
      h ? `${p.env} is locked by ${h.command} (${h.user}, ${ago(h.startedAt)}).` : `${p.env} is locked by another job.`,
      { env: p.env, ...(h ? { jobId: h.jobId, holderUser: h.user, holderCommand: h.command, since: ago(h.startedAt) } : {}) },
    );
  }
  try {
    await producer.enqueue(data, { jobId });
  } catch (err) {
    await producer.store.releaseLock(p.env, jobId).catch(() => undefined);
    throw err;
  }
  // Not awaited, like the command's own audit in handleCommand: the answer does not depend on it.
  void audit(producer.store, log, { type: 'lock', action: 'acquired', ...via(p.origin), env: p.env, jobId, user: p.origin.user, command: holder.command });
  return jobId;
}

/**
 * The version `rollback` with no VERSION goes back to: the most recent one in the bot's history
 * (versions deployed, and the versions that ran, or were pinned, before each job) that differs
 * from the running one. A version a rollback moved away from is never picked again: it was the bad one.
 */
export function resolveRollbackTarget(history: HistoryEntry[]): { target: string | undefined; running: string | undefined } {
  const latest = history[0];
  if (!latest) return { target: undefined, running: undefined };
  const ok = (e: HistoryEntry) => e.outcome.startsWith('succeeded');
  // After a failed job the history cannot tell what runs: the version it started from is the one to go back to.
  const running = ok(latest) ? latest.version : undefined;
  const rolledBackFrom = new Set(history.filter((e) => e.kind === 'rollback' && ok(e) && e.fromVersion).map((e) => e.fromVersion));
  const newestFirst = history.flatMap((e) => [ok(e) ? e.version : null, e.fromVersion]);
  const target = newestFirst.find((v): v is string => !!v && v !== running && !rolledBackFrom.has(v));
  return { target, running };
}

async function startDeploy(command: Extract<Command, { name: 'deploy' }>, req: CommandRequest, deps: CommandDeps, notes: string[]): Promise<Msg> {
  const jobId = await startRunbook({ kind: 'deploy', version: command.version, env: command.env, maintenance: command.maintenance, dryRun: command.dryRun, origin: req.origin }, deps.producer, deps.log);
  const what = `${command.dryRun ? 'Dry run of deploy' : 'Deploying'} ${command.version} to ${command.env}`;
  const text = command.dryRun
    ? `🧪 ${esc(what)}: the plan will be posted in the channel; nothing runs on the host. (job ${code(jobId)})`
    : `🚀 ${esc(what)}. Progress is posted in the channel, step by step. (job ${code(jobId)})`;
  return reply(`${what} (job ${jobId})`, [{ type: 'section', text }], notes);
}

async function startRollback(command: Extract<Command, { name: 'rollback' }>, req: CommandRequest, deps: CommandDeps, notes: string[]): Promise<Msg> {
  await deps.producer.ready();
  let target = command.version;
  if (target === undefined) {
    const found = resolveRollbackTarget(await deps.producer.store.readHistory(command.env, 50));
    target = found.target;
    if (target === undefined) {
      const other = found.running ? ` other than the running ${found.running}` : '';
      throw new ChatOpsError(ErrorCode.NoRollbackTarget, `The bot's history has no version to go back to on ${command.env}${other}.`, { env: command.env });
    }
    notes.push(
      found.running
        ? `Target ${target}: the most recent version in the bot's history that differs from the running ${found.running}.`
        : `Target ${target}: the version the last job (which failed) started from, from the bot's history.`,
    );
  }
  const jobId = await startRunbook({ kind: 'rollback', version: target, env: command.env, dryRun: command.dryRun, origin: req.origin }, deps.producer, deps.log);
  const what = `${command.dryRun ? 'Dry run of rollback of' : 'Rolling back'} ${command.env} to ${target}`;
  return reply(`${what} (job ${jobId})`, [{ type: 'section', text: `⏪ ${esc(what)}. Maintenance goes on first and a snapshot is taken before anything is downgraded. (job ${code(jobId)})` }], notes);
}

/** Stops a job at its next safe point (between steps, or at the gate it waits on). */
async function cancelJob(jobArg: string | undefined, req: CommandRequest, deps: CommandDeps): Promise<Msg> {
  await deps.producer.ready();
  const user = req.origin.user;
  const isAdmin = await deps.access.has(user, deps.config.access.admins);
  let jobId = jobArg;
  if (jobId === undefined) {
    const locks = await deps.producer.store.locks(Object.keys(deps.config.environments));
    const mine = locks.filter((l) => l.user === user);
    const pick = mine.length === 1 ? mine[0] : mine.length === 0 && isAdmin && locks.length === 1 ? locks[0] : undefined;
    if (!pick) {
      throw new ChatOpsError(ErrorCode.CommandInvalid, mine.length > 1 || locks.length > 1 ? 'Several jobs are running; name the one to cancel.' : 'You have no running job to cancel.', { usage: '/engramia cancel JOB' });
    }
    jobId = pick.jobId;
  }
  const job = await deps.producer.getJob(jobId);
  const data = job?.data as { origin?: Origin; kind?: string; state?: { outcome?: string } } | undefined;
  if (!job || !data?.origin) throw new ChatOpsError(ErrorCode.CommandInvalid, `There is no job ${jobId}.`, { usage: '/engramia cancel JOB' });
  if (data.origin.user !== user && !isAdmin) {
    throw new ChatOpsError(ErrorCode.Forbidden, `You may not cancel job ${jobId}.`, { who: 'Only the person who started it, or an admin (access.admins), may cancel it.' });
  }
  const state = await job.getState();
  if (state === 'completed' || state === 'failed') {
    return reply(`Job ${jobId} has already ended`, [{ type: 'section', text: `Job ${code(jobId)} has already ended (${esc(data.state?.outcome ?? state)}); nothing to cancel.` }]);
  }
  await deps.producer.store.requestCancel(jobId, user);
  // A job parked at a gate would otherwise notice only when the gate expires.
  if (state === 'delayed') await job.promote().catch(() => undefined);
  await audit(deps.producer.store, deps.log, { type: 'cancel', ...via(req.origin), jobId, user });
  return reply(`Cancelling job ${jobId}`, [
    { type: 'section', text: `🛑 Cancelling job ${code(jobId)}: it stops at its next safe point (between steps; a running step is not cut off) and reports the host's state in its card.` },
  ]);
}

/** Long enough to cover the gap until the worker starts renewing it. */
const DEPLOY_LOCK_TTL_MS = 10 * 60_000;

/** What handling a command came to: the answer, the metrics outcome, and the job it queued. */
interface Handled {
  msg: Msg;
  outcome: 'ok' | 'queued' | 'unavailable';
  jobId?: string;
}

type Handler<N extends Command['name']> = (command: Extract<Command, { name: N }>, req: CommandRequest, deps: CommandDeps, notes: string[], log: Logger) => Promise<Handled>;
type ReadCommand = Extract<Command, { name: ReadJobName }>;

const queued = (msg: Msg): Handled => ({ msg, outcome: 'queued' });

/** One handler per command that is not a read (those queue a read job: `readCommand`). */
const HANDLERS: { [N in Exclude<Command['name'], ReadJobName | 'help'>]: Handler<N> } = {
  history: async (command, _req, deps, notes) => {
    // Read from the bot's own records in Redis: nothing to ask the host, so no job is queued.
    await deps.producer.ready();
    const msg = historyMsg(command.env, await deps.producer.store.readHistory(command.env, 15));
    return { msg: reply(msg.summary, msg.parts, notes), outcome: 'ok' };
  },
  unlock: async (command, req, deps, notes, log) => {
    await deps.producer.ready();
    const holder = await deps.producer.store.forceUnlock(command.env);
    await audit(deps.producer.store, log, { type: 'unlock', ...via(req.origin), env: command.env, user: req.origin.user, ...(holder ? { heldBy: holder.user, jobId: holder.jobId, command: holder.command } : {}) });
    const text = holder
      ? `🔓 ${esc(command.env)} unlocked. It was held by ${esc(holder.command)} (${mention(holder.user)}, ${ago(holder.startedAt)}), job ${code(holder.jobId)}. If that job still runs, cancel it too: ${code(`/engramia cancel ${holder.jobId}`)}.`
      : `🔓 ${esc(command.env)} was not locked; nothing changed.`;
    return { msg: reply(`${command.env} unlocked`, [{ type: 'section', text }], notes), outcome: 'ok' };
  },
  cancel: async (command, req, deps) => ({ msg: await cancelJob(command.job, req, deps), outcome: 'ok' }),
  maintenance: async (command, req, deps, notes) => {
    const jobId = await startRunbook({ kind: 'maintenance', version: '', env: command.env, maintenance: command.state === 'on', dryRun: false, origin: req.origin }, deps.producer, deps.log);
    return queued(reply(`Maintenance ${command.state} for ${command.env} (job ${jobId})`, [
      { type: 'section', text: `🚧 Turning maintenance *${command.state}* on ${esc(command.env)}; engramia-api is re-created on the version running now. (job ${code(jobId)})` },
    ], notes));
  },
  migrate: async (command, req, deps, notes) => {
    if (command.target === 'head') {
      const jobId = await startRunbook({ kind: 'upgrade', version: '', env: command.env, dryRun: false, origin: req.origin }, deps.producer, deps.log);
      return queued(reply(`Database migrations on ${command.env} (job ${jobId})`, [
        { type: 'section', text: `⬆️ Reading the revisions first; an approver confirms the plan in the thread before \`alembic upgrade head\` runs. (job ${code(jobId)})` },
      ], notes));
    }
    const jobId = await startRunbook({ kind: 'migrate', version: command.target, env: command.env, dryRun: false, origin: req.origin }, deps.producer, deps.log);
    return queued(reply(`Database downgrade ${command.target} on ${command.env} (job ${jobId})`, [
      { type: 'section', text: `⬇️ Snapshot first, then the exact revision is shown for confirmation before anything is downgraded. (job ${code(jobId)})` },
    ], notes));
  },
  deploy: async (command, req, deps, notes) => queued(await startDeploy(command, req, deps, notes)),
  rollback: async (command, req, deps, notes) => queued(await startRollback(command, req, deps, notes)),
};

const READ_WORDING: Record<ReadJobName, string> = {
  health: 'Checking health of',
  migrations: 'Reading the migrations of',
  status: 'Reading the status of',
  version: 'Checking the version on',
  logs: 'Reading the engramia-api logs of',
  diagnose: 'Diagnosing',
};

/** A read command queues its job; a worker answers it. */
async function readCommand(command: ReadCommand, req: CommandRequest, deps: CommandDeps, notes: string[]): Promise<Handled> {
  const { jobId } = await deps.producer.enqueue({ kind: command.name, env: command.env, origin: req.origin, requestedAt: new Date().toISOString(), ...(command.name === 'logs' ? { tail: command.tail } : {}) });
  const what = READ_WORDING[command.name];
  return { msg: reply(`${what} ${command.env} (job ${jobId})`, [{ type: 'section', text: `⏳ ${what} *${command.env}*… (job ${code(jobId)})` }], notes), outcome: 'queued', jobId };
}

function unavailable(name: string, notes: string[]): Handled {
  return { msg: reply(`${name} is not available yet`, [{ type: 'section', text: `🚧 \`${name}\` is not available in this version of the bot yet. Nothing was queued.` }], notes), outcome: 'unavailable' };
}

/** The checks every command but `help` passes, then its handler. */
async function checkedAndHandled(command: Exclude<Command, { name: 'help' }>, req: CommandRequest, deps: CommandDeps, notes: string[], log: Logger): Promise<Handled> {
  // A signed request can be replayed within Slack's 5-minute window; its trigger_id cannot be reused.
  if (req.origin.requestId) {
    await deps.producer.ready();
    if (!(await deps.producer.store.firstSighting(req.origin.requestId))) throw new ChatOpsError(ErrorCode.Replay, 'replayed request', {});
  }
  await checkRole(deps.config, deps.access, command, req.origin.user);
  if (isReadJobName(command.name)) return 'env' in command ? readCommand(command as ReadCommand, req, deps, notes) : unavailable(command.name, notes);
  const handler = HANDLERS[command.name as keyof typeof HANDLERS] as Handler<Command['name']> | undefined;
  return handler ? handler(command as never, req, deps, notes, log) : unavailable(command.name, notes);
}

/** Decides what a command does and enqueues its job; it never touches a host. Parse, check, handle, one metrics call. */
async function decideCommand(req: CommandRequest, deps: CommandDeps, seen: { name: string; code?: string; jobId?: string }): Promise<Msg> {
  const log = deps.log.child({ user: req.origin.user, channel: req.origin.channel });
  let name = 'unknown';
  try {
    checkChannel(deps.config, req.origin);
    const { command, notes } = parseCommand(req.text, { envNames: Object.keys(deps.config.environments), defaultEnv: deps.config.defaultEnv });
    name = command.name;
    seen.name = name;
    const handled: Handled = command.name === 'help' ? { msg: helpMsg(deps.config), outcome: 'ok' } : await checkedAndHandled(command, req, deps, notes, log);
    // The audit line handleCommand writes next names the job: one log line per command, not two.
    if (handled.jobId) seen.jobId = handled.jobId;
    deps.metrics?.commands.inc({ command: name, outcome: handled.outcome });
    return handled.msg;
  } catch (err) {
    const error = asChatOpsError(err);
    seen.code = error.code;
    if (error.code === ErrorCode.Internal) log.error({ err: error.message, text: req.text.slice(0, 200) }, 'command failed');
    else log.info({ code: error.code }, 'command refused');
    deps.metrics?.commands.inc({ command: name, outcome: error.code.toLowerCase() });
    return reply(plainText(describeError(error).title), errorParts(error));
  }
}

/**
 * The transport-neutral command path: Slack's listener, the console and
 * buttons all come through here. Every command and every refusal is audited.
 */
export async function handleCommand(req: CommandRequest, deps: CommandDeps): Promise<Msg> {
  const seen: { name: string; code?: string; jobId?: string } = { name: 'unknown' };
  const msg = await decideCommand(req, deps, seen);
  // Not awaited: Slack's ack carries the answer and must not wait for a Redis round trip that changes nothing in it.
  // audit() writes the log line and sends the XADD before it returns (so a later read on the same connection
  // sees it), and logs a failed write instead of throwing.
  void audit(deps.producer.store, deps.log, {
    type: seen.code ? 'refusal' : 'command',
    ...via(req.origin),
    user: req.origin.user,
    channel: req.origin.channel,
    // A refusal at parsing never learnt the command's name: keep the word it started with.
    command: seen.name !== 'unknown' ? seen.name : auditText(req.text.trim().split(/\s+/)[0] ?? '').slice(0, 20),
    text: auditText(req.text),
    ...(seen.code ? { code: seen.code } : {}),
    ...(seen.jobId ? { jobId: seen.jobId } : {}),
    answer: auditText(msg.summary),
  });
  return msg;
}
