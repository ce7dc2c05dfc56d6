import type { Secret } from '../../config/secret.js';
import { parseHistory, type Revision } from '../../engramia/alembic.js';
import { ChatOpsError, ErrorCode } from '../../errors.js';
import { scrub } from '../../security/scrub.js';
import type { ExecResult } from '../../ssh/executor.js';
import { showCommand, type RemoteCommand } from '../../ssh/quote.js';
import * as cmd from '../commands.js';
import { readBack, readEnvVars } from '../env-edit.js';
import type { StepRecord } from '../types.js';
import type { AlembicVia, StepContext, TimeoutKind } from './types.js';

// How a step runs commands on the host: each recorded on the step (command, scrubbed output, exit
// code, the process group while it runs), so the card, the thread and recovery all see the same.

export function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n').trim();
}

/** Runs a command as part of a step and records what the host saw, secrets masked. */
export async function run(ctx: StepContext, rec: StepRecord, command: RemoteCommand, opts: { timeout: TimeoutKind; stdin?: Secret }): Promise<ExecResult> {
  const shown = showCommand(command) + (opts.stdin ? ` <<< $${opts.stdin.source}` : '');
  rec.command = rec.command ? `${rec.command}\n${shown}` : shown;
  const res = await ctx.ssh.exec(command, {
    timeoutMs: ctx.env.timeouts[opts.timeout] * 1000,
    ...(opts.stdin ? { stdin: opts.stdin } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onStart: (pid) => {
      // Saved at once: if this worker dies now, the next one must be able to find this process on the host.
      rec.remotePid = pid;
      void ctx.save().catch(() => undefined);
    },
  });
  rec.remotePid = undefined;
  const full = scrub(`${res.stdout.toString('utf8')}\n${res.stderr}`.trim(), ctx.knownSecrets);
  ctx.fullOutput.set(rec.id, [ctx.fullOutput.get(rec.id), `$ ${shown}`, full].filter(Boolean).join('\n'));
  const out = tail(full);
  rec.outputTail = rec.outputTail ? `${rec.outputTail}\n${out}`.trim() : out;
  rec.exitCode = res.exitCode;
  return res;
}

export function mustSucceed(res: ExecResult, what: string): ExecResult {
  if (res.exitCode === 0) return res;
  throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `${what} exited with ${res.exitCode ?? res.signal ?? 'no status'}`, {
    command: res.command,
    exitCode: res.exitCode,
  });
}

/**
 * Sets (or with null removes) one `.env` variable, then reads it back: the edit counts only when
 * the host's file says so. A failure says what the host said (e.g. "No space left on device").
 */
export async function editEnv(ctx: StepContext, rec: StepRecord, name: string, value: string | null): Promise<void> {
  const what = value === null ? `removing ${name} from .env` : `setting ${name}=${value} in .env`;
  const edit = value === null ? cmd.unsetEnvVar(ctx.env, name) : cmd.setEnvVar(ctx.env, name, value);
  const res = await run(ctx, rec, edit, { timeout: 'command' });
  if (res.exitCode !== 0) {
    const said = scrub(res.stderr, ctx.knownSecrets).trim().split('\n').filter(Boolean).at(-1);
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `${what} failed (exit ${res.exitCode ?? res.signal ?? '?'})${said ? `: ${said}` : ''}`, { command: res.command, exitCode: res.exitCode });
  }
  const back = await run(ctx, rec, readEnvVars(ctx.env, [name]), { timeout: 'command' });
  const seen = readBack(back.exitCode, back.stdout.toString('utf8'), name);
  if (seen !== value) {
    const found = seen === undefined ? `could not be read (grep exit ${back.exitCode ?? back.signal ?? '?'})` : seen === null ? `has no ${name}` : `has ${name}=${seen}`;
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `${what}: the edit exited 0 but .env ${found}`, { command: back.command, exitCode: back.exitCode });
  }
  // grep's "no line" (1) is the success of a removal.
  rec.exitCode = 0;
}

/** What compose and the daemon answer to `exec` when the service has no running container: crashed, or restarting. */
const NO_CONTAINER = /is restarting, wait until the container is running|service "[^"]+" is not running|Container [0-9a-f]+ is not running/;

/** An exec whose container died under it: killed with it (SIGKILL, 128 + 9), after printing part of its output. */
const KILLED_WITH_CONTAINER = 137;

/**
 * alembic for the image of `tag`, as part of a step: `exec` in the running container, or a one-off
 * `run --rm` of the same image when there is no container to exec into. The daemon refused such an
 * exec before anything started in the container, so running it the other way is not a repeat.
 */
export async function runAlembic(ctx: StepContext, rec: StepRecord, tag: string, args: readonly string[], timeout: TimeoutKind): Promise<ExecResult> {
  const command = (via: AlembicVia | undefined) => (via === 'run' ? cmd.alembicOneOff(ctx.env, tag, args) : cmd.alembic(ctx.env, tag, args));
  const res = await run(ctx, rec, command(ctx.state.alembicVia), { timeout });
  if (res.exitCode === 0 || ctx.state.alembicVia === 'run') return res;
  const died = res.exitCode === KILLED_WITH_CONTAINER;
  if (!died && !NO_CONTAINER.test(res.stderr)) return res;
  ctx.state.alembicVia = 'run';
  // Exit 137 is the container's death, not alembic's answer; what alembic printed is cut off. The
  // callers pass exact revisions, so running it again in a one-off container cannot go too far.
  ctx.state.warnings.push(
    died
      ? `engramia-api died under \`exec\` (exit 137) while \`alembic ${args.join(' ')}\` ran; it ran again in a one-off \`docker compose run --rm\` container of ${tag}.`
      : `engramia-api had no running container to \`exec\` into, so alembic ran in a one-off \`docker compose run --rm\` container of ${tag}.`,
  );
  return run(ctx, rec, command('run'), { timeout });
}

/** `alembic current` or `alembic heads` in the container of `tag`, as part of a step: the revision it names (null: none, base). */
export async function readRevision(ctx: StepContext, rec: StepRecord, tag: string, which: 'current' | 'heads'): Promise<string | null> {
  const res = mustSucceed(await runAlembic(ctx, rec, tag, [which], 'command'), `alembic ${which}`);
  return cmd.parseRevision(res.stdout.toString('utf8'));
}

/** `alembic history` as the image of `tag` knows it, as part of a step. */
export async function readHistory(ctx: StepContext, rec: StepRecord, tag: string): Promise<Revision[]> {
  const res = mustSucceed(await runAlembic(ctx, rec, tag, ['history'], 'command'), 'alembic history');
  return parseHistory(res.stdout.toString('utf8'));
}
