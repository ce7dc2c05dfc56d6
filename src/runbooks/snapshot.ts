import type { EnvironmentConfig } from '../config/schema.js';
import { compose } from '../engramia/compose.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { RemoteCommand } from '../ssh/quote.js';
import { mustSucceed, run } from './kernel/exec.js';
import type { StepContext } from './kernel/types.js';
import type { StepRecord } from './types.js';

/**
 * The host side of a pre-downgrade snapshot besides the dump itself: the backup folder, whether
 * the disk can hold the dump, and how many old snapshots are kept.
 */

const MIB = 1024 * 1024;
/**
 * A custom-format dump is compressed and leaves indexes out, so the database's own size is an upper
 * bound for it; ×1.2 and 64 MiB on top keep a dump from ever filling the disk to the last byte.
 */
export function spaceNeeded(dbBytes: number): number {
  return Math.ceil(dbBytes * 1.2) + 64 * MIB;
}

export function backupDir(env: EnvironmentConfig): string {
  return (env.backupPath ?? env.deployPath).replace(/\/+$/, '');
}

// A folder the bot creates is 0700 (umask 077 also covers missing parents); one that exists is left
// as its owner set it: loosening or tightening someone else's folder is not this bot's call.
const PREPARE_DIR_SCRIPT = 'set -eu; umask 077; d=$1; if [ ! -d "$d" ]; then mkdir -p -m 700 -- "$d"; fi; df -Pk -- "$d"';

export function prepareBackupDir(env: EnvironmentConfig, dir: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['sh', '-c', PREPARE_DIR_SCRIPT, 'chatops-backup-dir', dir] };
}

export function databaseSize(env: EnvironmentConfig): RemoteCommand {
  return compose(env, ['exec', '-T', 'pgvector', 'psql', '-X', '-U', 'engramia', '-d', 'engramia', '-A', '-t', '-c', 'SELECT pg_database_size(current_database())']);
}

export function listSnapshots(env: EnvironmentConfig, dir: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['find', dir, '-maxdepth', '1', '-type', 'f', '-name', 'pre_rollback_*.dump'] };
}

export function removeFiles(env: EnvironmentConfig, paths: readonly string[]): RemoteCommand {
  return { cwd: env.deployPath, argv: ['rm', '-f', '--', ...paths] };
}

/** Bytes available to an unprivileged writer, from `df -Pk` (POSIX format: 1024-byte blocks). */
export function parseDfAvailable(output: string): number | undefined {
  const last = output.trim().split('\n').at(-1) ?? '';
  const m = /\s(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+\/.*$/.exec(last);
  return m ? Number(m[3]) * 1024 : undefined;
}

/** What `psql -A -t` prints for a single number. */
export function parseDbSize(output: string): number | undefined {
  const m = /^\s*(\d+)\s*$/.exec(output);
  return m ? Number(m[1]) : undefined;
}

// Only names the bot itself writes; anything else in the folder is never a candidate.
const SNAPSHOT_FILE = /\/pre_rollback_\d{12}(?:_\d+)?\.dump$/;

/**
 * Which snapshots retention removes: all but the newest `keep` (the name carries the UTC minute, and
 * `_N` a later one in the same minute), never the one just taken.
 */
export function snapshotsToRemove(found: readonly string[], keep: number, fresh: string): string[] {
  const order = (p: string) => p.replace(/\.dump$/, '').replace(/^(.*_\d{12})$/, '$1_1');
  const ours = found.filter((p) => SNAPSHOT_FILE.test(p)).sort((a, b) => (order(a) < order(b) ? 1 : -1));
  const kept = new Set([fresh, ...ours.filter((p) => p !== fresh).slice(0, Math.max(0, keep - 1))]);
  return ours.filter((p) => !kept.has(p));
}

const mib = (b: number) => `${Math.round(b / MIB).toLocaleString('en-US')} MiB`;

/** Creates the folder if needed and refuses, with nothing dumped, when its disk cannot hold the dump. */
export async function checkSpace(ctx: StepContext, rec: StepRecord, dir: string): Promise<string> {
  const df = mustSucceed(await run(ctx, rec, prepareBackupDir(ctx.env, dir), { timeout: 'command' }), `preparing the backup folder ${dir}`);
  const free = parseDfAvailable(df.stdout.toString('utf8'));
  const size = mustSucceed(await run(ctx, rec, databaseSize(ctx.env), { timeout: 'command' }), 'reading the database size');
  const db = parseDbSize(size.stdout.toString('utf8'));
  if (free === undefined || db === undefined) {
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `could not tell whether ${dir} can hold the snapshot (free space ${free === undefined ? 'unreadable' : mib(free)}, database size ${db === undefined ? 'unreadable' : mib(db)}); nothing was dumped`, {});
  }
  const need = spaceNeeded(db);
  if (free < need) {
    throw new ChatOpsError(
      ErrorCode.RemoteCommandFailed,
      `not enough space for the snapshot: ${dir} has ${mib(free)} free, the dump may need up to ${mib(need)} (database ${mib(db)} × 1.2 + 64 MiB); nothing was dumped. Free space or set backupPath to a bigger disk`,
      {},
    );
  }
  return `database ${mib(db)}, ${mib(free)} free in ${dir}`;
}

/** Keeps the newest `backups.keep` snapshots; called only once the new one is verified. A failure here is a warning. */
export async function pruneSnapshots(ctx: StepContext, rec: StepRecord, dir: string, fresh: string): Promise<string | undefined> {
  const listed = await run(ctx, rec, listSnapshots(ctx.env, dir), { timeout: 'command' });
  if (listed.exitCode !== 0) {
    ctx.state.warnings.push(`Could not list old snapshots in ${dir}; none were removed.`);
    return undefined;
  }
  const old = snapshotsToRemove(listed.stdout.toString('utf8').split('\n').filter(Boolean), ctx.env.backups.keep, fresh);
  if (old.length === 0) return undefined;
  const rm = await run(ctx, rec, removeFiles(ctx.env, old), { timeout: 'command' });
  if (rm.exitCode !== 0) {
    ctx.state.warnings.push(`Removing ${old.length} old snapshot(s) in ${dir} failed (exit ${rm.exitCode}); check the folder's free space.`);
    return undefined;
  }
  return `removed ${old.length} older snapshot${old.length === 1 ? '' : 's'} (keeping ${ctx.env.backups.keep})`;
}
