// Shared by the fault-injection tests: the host's own record of what ran, the deploy card and its
// thread, and the moment a slowed command is running on the host with its process group saved.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog } from '../world/sim/host.mjs';
import { startSshd, type SshdServer } from '../world/sshd.js';
import { OPS_CHANNEL, SIGNING_SECRET, type World, type WorldOptions } from './harness.js';
import { BOB, blockText, type Block } from './blocks.js';

export async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type Rec = { phase: string; pid: number; exitCode: number | null; argv: string[] };
export const records = (w: World): Rec[] => readCommandLog(w.deployPath) as Rec[];
export const isCmd = (r: Rec, needle: string) => r.argv.join(' ').includes(needle);
/** Invocations that ran to the end (the host wrote their exit code). */
export const completed = (w: World, needle: string) => records(w).filter((r) => r.phase !== 'start' && isCmd(r, needle));
/** Every process the host saw for a command, finished or not. */
export const invocations = (w: World, needle: string) => new Set(records(w).filter((r) => isCmd(r, needle)).map((r) => r.pid)).size;

/** The state-changing commands of a standard deploy: each must have finished exactly once. */
export const DEPLOY_COMMANDS = ['login', ' pull', 'alembic upgrade head', 'up -d engramia-api caddy', 'image prune'];

export function expectEachCompletedOnce(w: World, needles = DEPLOY_COMMANDS): void {
  for (const n of needles) {
    const done = completed(w, n);
    expect(done.map((r) => `${r.exitCode} ${r.argv.join(' ')}`), n).toHaveLength(1);
    expect(done[0]!.exitCode, n).toBe(0);
  }
}

export function card(w: World) {
  return w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && blockText(m.blocks as Block[]).includes('Deploy '));
}

export async function finalCard(w: World, outcome: RegExp, timeoutMs = 45_000): Promise<string> {
  return until(() => {
    const c = card(w);
    const t = c ? blockText(c.blocks as Block[]) : '';
    return outcome.test(t) ? t : undefined;
  }, `deploy card matching ${outcome}`, timeoutMs);
}

export function thread(w: World): string {
  const c = card(w);
  return c ? w.slack.threadReplies(OPS_CHANNEL, c.ts).map((m) => blockText(m.blocks as Block[])).join('\n---\n') : '';
}

export async function lockHolder(w: World) {
  return w.bot.producer!.store.readLock('production');
}

/** The job's saved state, read from Redis the way any worker would. */
export async function savedStep(w: World, stepId: string) {
  const holder = await lockHolder(w);
  if (!holder?.jobId) return undefined;
  const job = await w.bot.producer!.getJob(holder.jobId);
  return (job?.data as any)?.state?.steps?.find((s: any) => s.id === stepId);
}

export function processGone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return true;
  // Reparented orphans are not reaped in this sandbox: a zombie counts as gone.
  const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
  return state === 'Z' || state === 'X';
}

/** Waits until the host runs the (slowed) command and the job has saved its process group: the moment to break things. */
export async function startedOnHost(w: World, needle: string, stepId: string): Promise<{ orphan: Rec; remotePid: number }> {
  return until(async () => {
    const orphan = records(w).find((r) => r.phase === 'start' && isCmd(r, needle));
    const step = await savedStep(w, stepId);
    return orphan && step?.status === 'running' && step.remotePid ? { orphan, remotePid: step.remotePid as number } : undefined;
  }, `${needle} to start on the host with its process group saved`);
}

export async function press(w: World, actionId: string, user = BOB): Promise<void> {
  const message = await until(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], actionId)), `a ${actionId} button`);
  const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: structuredClone(message), action_id: actionId });
  expect(res.status).toBe(200);
}

const SIM_BIN_DIR = fileURLToPath(new URL('../world/sim/bin', import.meta.url));

function ppidOf(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * A sshd of this test file's own (started before its tests, stopped after), for tests that kill SSH
 * sessions: the shared sshd's other connections belong to other files running at the same time.
 */
export function privateSshd(): { worldSshd(): NonNullable<WorldOptions['sshd']>; dropSessions(): number } {
  let sshd: SshdServer | undefined;
  beforeAll(async () => {
    sshd = await startSshd({ binDirs: [SIM_BIN_DIR] });
  });
  afterAll(async () => {
    await sshd?.stop();
  });
  const started = (): SshdServer => {
    if (!sshd) throw new Error('the private sshd is not started (call privateSshd() at the top level of the test file)');
    return sshd;
  };
  return {
    worldSshd() {
      const s = started();
      return { host: s.host, port: s.port, username: s.username, privateKeyPath: s.privateKeyPath, hostKeySha256: s.hostKeySha256 };
    },
    /** Kills every per-connection sshd process of the server: the bot's connection drops mid-command. */
    dropSessions() {
      const listener = Number(readFileSync(join(started().dir, 'sshd.pid'), 'utf8').trim());
      let n = 0;
      for (const entry of readdirSync('/proc')) {
        const pid = Number(entry);
        if (Number.isInteger(pid) && pid !== listener && ppidOf(pid) === listener) {
          process.kill(pid, 'SIGKILL');
          n += 1;
        }
      }
      return n;
    },
  };
}
