// `npm run demo` as a newcomer runs it: one command, its own Redis and sshd, the console on stdin;
// and when it ends nothing it started is left running or lying around.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function processes(): Array<{ pid: number; ppid: number; args: string }> {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  child = undefined;
});

it('npm run demo starts its own Redis, sshd and simulated host, answers a command, and leaves nothing behind', async () => {
  // No REDIS_URL: the demo must bring its own Redis. No Slack tokens: the console.
  const demo = spawn('npm', ['run', '--silent', 'demo'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['pipe', 'pipe', 'pipe'] });
  child = demo;
  let out = '';
  let err = '';
  demo.stdout!.on('data', (d) => (out += d));
  demo.stderr!.on('data', (d) => (err += d));
  const exited = once(demo, 'exit').then(([code]) => code as number | null);
  const waitFor = async (re: RegExp, timeoutMs = 30_000) => {
    if (!(await until(() => re.test(out) || demo.exitCode !== null, timeoutMs)) || !re.test(out)) {
      throw new Error(`no ${re} in the demo's output:\n${out}\n--- stderr ---\n${err}`);
    }
    return re.exec(out)!;
  };

  await waitFor(/You are U01ALICE/);
  const redisPort = (await waitFor(/private redis-server 127\.0\.0\.1:(\d+)/))[1]!;
  const sshdConfig = (await waitFor(/config (\/\S+\/sshd_config)\)/))[1]!;
  const demoDir = dirname((await waitFor(/ config\s+(\/\S+\/chatops\.yml)/))[1]!);
  const redisProc = () => processes().filter((p) => p.args.includes('redis-server') && p.args.includes(`:${redisPort}`));
  const sshdProc = () => processes().filter((p) => p.args.includes(sshdConfig));
  expect(redisProc()).toHaveLength(1);
  expect(sshdProc()).toHaveLength(1);

  demo.stdin!.write('/engramia version\n');
  await waitFor(/production: version 0\.6\.0/);
  expect(out).toMatch(/engramia-api` running · `0\.6\.0`/);
  // The SSH sessions the answer came through: per-connection sshd processes under the listener.
  const listener = sshdProc()[0]!.pid;
  const sessions = processes().filter((p) => p.ppid === listener).map((p) => p.pid);

  demo.stdin!.write('exit\n');
  expect(await exited).toBe(0);
  expect(await until(() => redisProc().length === 0, 5000)).toBe(true);
  expect(await until(() => sshdProc().length === 0, 5000)).toBe(true);
  expect(await until(() => processes().every((p) => !sessions.includes(p.pid)), 5000)).toBe(true);
  expect(existsSync(demoDir)).toBe(false);
  expect(existsSync(dirname(sshdConfig))).toBe(false);
}, 40_000);
