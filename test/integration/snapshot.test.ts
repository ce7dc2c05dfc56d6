// Pre-downgrade snapshots through the real chain (`/engramia migrate downgrade -1`): private files
// and folder, a free-space check against the host's real `df` before any dump, and retention that
// removes old snapshots only after a new one is verified.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findButton } from '../world/slack-requests.js';
import { readCommandLog, readEnvFile, setDbSize, setFault } from '../world/sim/host.mjs';
import { OPS_CHANNEL, startWorld, type World, type WorldOptions } from './harness.js';
import { blockText, type Block } from './blocks.js';

const canMount = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r']).status === 0;
if (!canMount) console.warn('[snapshot.test] cannot mount a tmpfs here (needs root): the small-disk test is skipped');

let world: World | undefined;
const cleanups: (() => void)[] = [];
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 30) ---\n${world.logs.slice(-30).join('')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath), null, 1).slice(-3000)}`);
  }
  await world?.close();
  world = undefined;
  for (const c of cleanups.splice(0).reverse()) c();
});

function backups(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chatops-backups-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(opts: WorldOptions = {}): Promise<World> {
  world = await startWorld({ slackLimits: false, ...opts });
  return world;
}

async function finished(w: World) {
  const msg = await w.slack.waitFor(
    () => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && blockText(m.blocks as Block[]).includes('Downgrade the production database') && /failed|succeeded|cancelled/.test(blockText(m.blocks as Block[]))),
    { timeoutMs: 30_000, description: 'a finished downgrade card' },
  );
  return blockText(msg.blocks as Block[]);
}

const atGate = (w: World) =>
  w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 30_000, description: 'the downgrade gate' });

const dumped = (w: World) => readCommandLog(w.deployPath).some((r: any) => r.argv.includes('pg_dump'));

async function refusedForSpace(w: World, dir: string) {
  await w.slash('migrate downgrade -1');
  const card = await finished(w);
  expect(card).toMatch(/Stopped at \*Snapshot the database \(pg_dump\)\*: not enough space for the snapshot: .* free, the dump may need up to .*; nothing was dumped/);
  expect(dumped(w)).toBe(false);
  expect(readdirSync(dir).filter((f) => f.startsWith('pre_rollback_'))).toEqual([]);
  // The job had turned maintenance on for the snapshot; it is off again, and the card says so.
  expect(card).toContain('maintenance off in .env');
  expect(card).not.toContain('Maintenance is still ON');
  expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
}

describe('pre-downgrade snapshots', () => {
  it('refuses before dumping when the database is bigger than the backup disk can hold', async () => {
    const dir = backups();
    const w = await open({ envExtra: { backupPath: dir } });
    setDbSize(w.deployPath, 2 ** 53);
    await refusedForSpace(w, dir);
  });

  it.skipIf(!canMount)('refuses on a real 64 KB disk (df of a tmpfs backupPath) with a small database', async () => {
    const dir = backups();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    cleanups.push(() => execFileSync('umount', ['-l', dir]));
    const w = await open({ envExtra: { backupPath: dir } });
    await refusedForSpace(w, dir);
  });

  it('creates a missing backup folder 0700 and writes the snapshot 0600; the step says what space it found', async () => {
    const dir = join(backups(), 'engramia', 'dumps');
    const w = await open({ envExtra: { backupPath: dir } });
    await w.slash('migrate downgrade -1');
    const gate = await atGate(w);
    const [file] = readdirSync(dir);
    expect(file).toMatch(/^pre_rollback_\d{12}\.dump$/);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, file!)).mode & 0o777).toBe(0o600);
    expect(blockText(gate.blocks as Block[])).toContain(join(dir, file!));
    const said = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => /Snapshot the database[\s\S]*MiB free in/.test(blockText(m.blocks as Block[]))), { timeoutMs: 10_000, description: 'the snapshot step with its space check' });
    expect(blockText(said.blocks as Block[])).toMatch(/database 9 MiB, [\d,]+ MiB free in /);
  });

  it('keeps the newest backups.keep snapshots once the new one is verified (keep 3, 5 old files)', async () => {
    const dir = backups();
    const old = ['202501010900', '202501020900', '202501030900', '202501040900', '202501050900'].map((s) => `pre_rollback_${s}.dump`);
    for (const f of old) writeFileSync(join(dir, f), 'PGDMP old');
    writeFileSync(join(dir, 'notes.txt'), 'not a snapshot');
    const w = await open({ envExtra: { backupPath: dir, backups: '{ keep: 3 }' } });
    await w.slash('migrate downgrade -1');
    await atGate(w);
    const left = readdirSync(dir).sort();
    const fresh = left.find((f) => !old.includes(f) && f.startsWith('pre_rollback_'));
    expect(fresh).toBeDefined();
    expect(left).toEqual(['notes.txt', old[3], old[4], fresh].sort());
    expect(readFileSync(join(dir, fresh!)).subarray(0, 5).toString()).toBe('PGDMP');
  });

  it('removes nothing when the new snapshot fails verification', async () => {
    const dir = backups();
    const old = ['202501010900', '202501020900', '202501030900'].map((s) => `pre_rollback_${s}.dump`);
    for (const f of old) writeFileSync(join(dir, f), 'PGDMP old');
    const w = await open({ envExtra: { backupPath: dir, backups: '{ keep: 1 }' } });
    // pg_dump "succeeds" but writes something that is not a custom-format dump.
    setFault(w.deployPath, { match: 'pg_dump', exitCode: 0, stdout: 'pg_dump: warning: garbage', times: 1 });
    await w.slash('migrate downgrade -1');
    const card = await finished(w);
    expect(card).toMatch(/is not a usable pg_dump file/);
    for (const f of old) expect(readFileSync(join(dir, f), 'utf8')).toBe('PGDMP old');
    expect(readCommandLog(w.deployPath).some((r: any) => r.argv.includes('downgrade'))).toBe(false);
  });
});
