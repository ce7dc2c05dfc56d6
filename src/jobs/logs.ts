import { LOG_TAIL_DEFAULT, LOG_TAIL_MAX } from '../commands/grammar.js';
import { compose } from '../engramia/compose.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { logsMsg } from '../render/logs.js';
import { API, apiLogs } from '../runbooks/commands.js';
import { scrubLog } from '../security/scrub.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';
import type { ReadJobData } from './types.js';

/** Above this many characters the tail goes to the thread as a file: a code block would have to cut it. */
export const LOGS_FILE_THRESHOLD = 2500;
/** 1000 lines of JSON logs fit easily; a runaway line must not fill the worker's memory. */
const MAX_OUTPUT_BYTES = 2 * 1024 * 1024;

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;
/** Compose prefixes each line with the service (or container) name: noise when there is one service. */
const COMPOSE_PREFIX = new RegExp(`^\\S*${API}\\S*\\s+\\| ?`);

export function cleanLogLines(text: string, knownSecrets: readonly string[]): string[] {
  const lines = text
    .replace(ANSI, '')
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.replace(COMPOSE_PREFIX, '').replace(CONTROL, '').trimEnd());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  // Scrubbed as one text, not line by line: a known secret that spans lines (a PEM key) is still found whole.
  return scrubLog(lines.join('\n'), knownSecrets).split('\n');
}

export async function logs(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  const tail = data.tail ?? LOG_TAIL_DEFAULT;
  // Job data comes back from Redis: the grammar checked it, but nothing reaches the host unchecked.
  if (!Number.isInteger(tail) || tail < 1 || tail > LOG_TAIL_MAX) {
    throw new ChatOpsError(ErrorCode.CommandInvalid, `--tail ${String(tail)} is not a line count from 1 to ${LOG_TAIL_MAX}.`, { command: 'logs', usage: '/engramia logs [ENV] [--tail N]' });
  }
  const res = await ctx.ssh.exec(apiLogs(ctx.env, tail), { timeoutMs: ctx.env.timeouts.command * 1000, maxOutputBytes: MAX_OUTPUT_BYTES });
  // As an operator would type it in the deploy folder: every word is a plain token, so no quoting is shown.
  const shown = compose(ctx.env, ['logs', `--tail=${tail}`, API]).argv.join(' ');
  const output = res.stdout.toString('utf8');
  if (res.exitCode !== 0) {
    const lines = cleanLogLines(`${output}\n${res.stderr}`, ctx.knownSecrets ?? []);
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `\`${shown}\` exited with ${res.exitCode ?? res.signal ?? '?'}`, {
      command: shown,
      exitCode: res.exitCode,
      outputTail: lines.slice(-20).join('\n'),
    });
  }
  let lines = output.trim() === '' ? [] : cleanLogLines(output, ctx.knownSecrets ?? []);
  // The executor keeps the tail of oversized output; its first line may be cut mid-way.
  if (res.truncated && lines.length > 1) lines = lines.slice(1);
  const text = lines.join('\n');
  const file = text.length > LOGS_FILE_THRESHOLD ? { filename: `${API}-${ctx.env.name}-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.log`, title: `${API} logs on ${ctx.env.name}: last ${lines.length} lines`, content: `${text}\n` } : undefined;
  const msg = logsMsg({
    env: ctx.env.name,
    host: ctx.ssh.label,
    service: API,
    requested: tail,
    lines,
    command: shown,
    ...(file ? { file: { filename: file.filename } } : {}),
    truncated: res.truncated,
    requestedBy: data.origin.user,
    jobId: ctx.jobId,
  });
  return { msg, outcome: lines.length === 0 ? 'empty' : file ? 'file' : 'ok', ...(file ? { file } : {}) };
}
