// `.env` edits that cannot happen (full disk, folder not writable, .env missing or read-only) must
// fail their step, leave .env and the folder as they were, and the card must not claim maintenance
// or a pin that never happened. Real chain: signed slash command → Bolt → BullMQ → worker → SSH → host.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, readdirSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readCommandLog, readEnvFile, readState, setFault, setMaintenance, SIM_BIN_DIR, writeEnvFile } from '../world/sim/host.mjs';
import { startSshd, type SshdServer } from '../world/sshd.js';
import { OPS_CHANNEL, startWorld, type World, type WorldOptions } from './harness.js';
import { blockText, type Block } from './blocks.js';

const isRoot = process.getuid?.() === 0;
const canMount = isRoot && spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r']).status === 0;
if (!canMount) console.warn('[host-edits.test] cannot mount a tmpfs here (needs root): the full-disk test is skipped');
if (!isRoot) console.warn('[host-edits.test] not root: the non-root SSH user test (useradd, sshd switching users) is skipped');

let world: World | undefined;
let sshd: SshdServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 30) ---\n${world.logs.slice(-30).join('')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath), null, 1).slice(-3000)}`);
  }
  // Unmount before the world removes its folder.
  for (const c of cleanups.splice(0).reverse()) c();
  await world?.close();
  world = undefined;
  await sshd?.stop();
  sshd = undefined;
});

async function open(opts: WorldOptions = {}): Promise<World> {
  world = await startWorld({ slackLimits: false, ...opts, envExtra: { verifySettleSeconds: 5, ...(opts.envExtra ?? {}) } });
  return world;
}

/** The finished top-level card whose text includes `title`. */
async function finished(w: World, title: string) {
  const msg = await w.slack.waitFor(
    () => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && blockText(m.blocks as Block[]).includes(title) && /succeeded|failed|cancelled/.test(blockText(m.blocks as Block[]))),
    { timeoutMs: 30_000, description: `a finished "${title}" card` },
  );
  return blockText(msg.blocks as Block[]);
}

/** Files next to .env that an edit could have left: `.env.*` copies or temp files. */
const strays = (w: World) => readdirSync(w.deployPath).filter((f) => f.startsWith('.env') && f !== '.env');

async function maintenanceOnFails(w: World, envBefore: string, why: RegExp) {
  await w.slash('maintenance on');
  const card = await finished(w, 'Maintenance on for production');
  expect(card).toMatch(/failed/);
  expect(card).toMatch(/Stopped at \*Turn maintenance on\*/);
  expect(card).toMatch(why);
  expect(card).toContain('maintenance off in .env');
  expect(card).toContain('off (when the job stopped: .env does not ask for it, the API serves)');
  expect(card).not.toContain('Maintenance is still ON');
  expect(readEnvFile(w.deployPath)).toBe(envBefore);
  expect(strays(w)).toEqual([]);
  // Nothing was re-created: the API still serves.
  expect(readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('up'))).toEqual([]);
  expect(readState(w.deployPath).containers['engramia-api']?.env.ENGRAMIA_MAINTENANCE).toBeUndefined();
}

describe('.env edits that cannot happen', () => {
  it.skipIf(!canMount)('a full disk (64 KB tmpfs as the deploy folder): maintenance on fails with "No space left on device"', async () => {
    const w = await open();
    const dp = w.deployPath;
    // The simulation's own state stays off the small disk, behind a symlink, so it can still record what ran.
    const keep = join(w.root, 'keep');
    mkdirSync(keep);
    renameSync(join(dp, '.sim'), join(keep, '.sim'));
    cpSync(dp, join(keep, 'files'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=755', 'tmpfs', dp]);
    cleanups.push(() => execFileSync('umount', ['-l', dp]));
    cpSync(join(keep, 'files'), dp, { recursive: true });
    symlinkSync(join(keep, '.sim'), join(dp, '.sim'));
    spawnSync('dd', ['if=/dev/zero', `of=${join(dp, 'fill')}`, 'bs=1k', 'count=128']);
    expect(execFileSync('df', ['-Pk', dp], { encoding: 'utf8' })).toMatch(/ 64 +64 +0 +100% /);
    await maintenanceOnFails(w, readEnvFile(dp), /No space left on device/);
  });

  it.skipIf(!isRoot)('a deploy folder the SSH user cannot write (non-root user): maintenance on fails with "Permission denied"', async () => {
    const user = 'chatops-it';
    // Password "*": no password login, but not a locked account (sshd without PAM refuses those, even for keys).
    if (spawnSync('id', ['-u', user]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', '--password', '*', user]);
    else execFileSync('usermod', ['--password', '*', user]);
    sshd = await startSshd({ binDirs: [SIM_BIN_DIR], user });
    const w = await open({ sshd });
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    // The user may read everything, write only .env itself and the simulation's state; the folder is root's.
    chmodSync(w.root, 0o755);
    chmodSync(w.deployPath, 0o755);
    chownSync(join(w.deployPath, '.env'), uid, -1);
    chmodSync(join(w.deployPath, '.env'), 0o600);
    execFileSync('chown', ['-R', user, join(w.deployPath, '.sim')]);
    await maintenanceOnFails(w, readEnvFile(w.deployPath), /Permission denied/);
  });

  it('.env mode 0400: maintenance on fails, saying .env is read-only', async () => {
    const w = await open();
    const envBefore = readEnvFile(w.deployPath);
    chmodSync(join(w.deployPath, '.env'), 0o400);
    await maintenanceOnFails(w, envBefore, /\.env is read-only \(mode 400\)/);
  });

  it('.env gone before the deploy turns maintenance on: the step fails and the card says maintenance is not on', async () => {
    const w = await open();
    // Slow down the deploy's read of the database revision, and remove .env meanwhile.
    setFault(w.deployPath, { match: ['alembic', 'current'], delayMs: 1500, times: 1 });
    await w.slash('deploy 0.6.1 --maintenance');
    await w.slack.waitFor(() => readCommandLog(w.deployPath).find((r: any) => r.phase === 'start' && r.argv.includes('current')), { timeoutMs: 20_000, description: 'alembic current started' });
    unlinkSync(join(w.deployPath, '.env'));
    const card = await finished(w, 'Deploy 0.6.1 to production');
    expect(card).toMatch(/Stopped at \*Turn maintenance on\*: setting ENGRAMIA_MAINTENANCE=true in .env failed \(exit 1\): chatops: .env does not exist/);
    expect(card).toContain('off (when the job stopped: .env unreadable, the API serves)');
    expect(card).not.toContain('Maintenance is still ON');
    expect(readdirSync(w.deployPath).filter((f) => f.startsWith('.env'))).toEqual([]);
    expect(readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('up'))).toEqual([]);
  });

  it('maintenance flag set but the re-create failed: the card says .env asks for it while the API still serves', async () => {
    const w = await open();
    setFault(w.deployPath, { match: ['up', '-d', 'engramia-api'], exitCode: 1, stderr: 'Error response from daemon: no space left on device\n', times: 1 });
    await w.slash('deploy 0.6.1 --maintenance');
    const card = await finished(w, 'Deploy 0.6.1 to production');
    expect(card).toMatch(/Stopped at \*Turn maintenance on\*/);
    expect(card).toContain('.env asks for maintenance, but the API still serves');
    expect(card).toContain('off (when the job stopped: .env asks for it, the API serves)');
    expect(card).not.toContain('Maintenance is still ON');
  });

  it('pinning the tag into a read-only .env fails the deploy at the pin step; the card does not say it is pinned', async () => {
    const w = await open();
    // Read-only from just before the pin: the deploy itself runs, the pin must not be claimed.
    setFault(w.deployPath, { match: ['upgrade', 'head'], delayMs: 1500, times: 1 });
    await w.slash('deploy 0.6.1 --no-maintenance');
    await w.slack.waitFor(() => readCommandLog(w.deployPath).find((r: any) => r.phase === 'start' && r.argv.includes('upgrade')), { timeoutMs: 20_000, description: 'alembic upgrade started' });
    const envBefore = readEnvFile(w.deployPath);
    chmodSync(join(w.deployPath, '.env'), 0o400);
    const card = await finished(w, 'Deploy 0.6.1 to production');
    expect(card).toMatch(/Stopped at \*Pin 0.6.1 in .env\*: setting IMAGE_TAG=0.6.1 in .env failed \(exit 1\): chatops: .env is read-only/);
    expect(card).toContain('.env pins `0.6.0`');
    expect(card).not.toMatch(/✅ Pin 0.6.1/);
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    expect(strays(w)).toEqual([]);
  });
});

describe('`export NAME=` and `NAME = value` in .env are the variable', () => {
  it('maintenance off removes an `export ENGRAMIA_MAINTENANCE=true` line, and the API serves again', async () => {
    const w = await open();
    setMaintenance(w.deployPath, true);
    writeEnvFile(w.deployPath, readEnvFile(w.deployPath).replace(/^ENGRAMIA_MAINTENANCE=true$/m, 'export ENGRAMIA_MAINTENANCE=true'));
    await w.slash('maintenance off');
    const card = await finished(w, 'Maintenance off for production');
    expect(card).toMatch(/succeeded/);
    expect(card).toContain('/v1/version answers 200 0.6.0');
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
  });

  it('a deploy reads a spaced `IMAGE_TAG = 0.6.0` pin and replaces it with one IMAGE_TAG line', async () => {
    const w = await open();
    writeEnvFile(w.deployPath, readEnvFile(w.deployPath).replace(/^IMAGE_TAG=0\.6\.0$/m, 'export IMAGE_TAG = 0.6.0'));
    await w.slash('deploy 0.6.1 --no-maintenance');
    const card = await finished(w, 'Deploy 0.6.1 to production');
    expect(card).toMatch(/succeeded/);
    expect(card).toContain('running 0.6.0, .env pins 0.6.0');
    expect(readEnvFile(w.deployPath).match(/^.*IMAGE_TAG.*$/gm)).toEqual(['IMAGE_TAG=0.6.1']);
  });
});
