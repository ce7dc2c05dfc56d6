// Talking to the real host the way the bot does: the project's SshExecutor, commands as data.
import { readFileSync } from 'node:fs';
import { Secret } from '../../src/config/secret.js';
import { createLogger } from '../../src/logger.js';
import { SshExecutor } from '../../src/ssh/executor.js';
import type { RemoteCommand } from '../../src/ssh/quote.js';

export interface VmTarget {
  sshd: { host: string; port: number; username: string; privateKeyPath: string; hostKeySha256: string };
  deploy: { path: string };
}

export interface VmResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr, the way an operator's terminal shows them. */
  output: string;
}

export interface Vm {
  /** `docker compose -f docker-compose.prod.yml …` in the deploy folder. */
  compose(args: readonly string[], opts?: { env?: Record<string, string>; stdin?: Secret; timeoutMs?: number }): Promise<VmResult>;
  /** Any argv, in the deploy folder. */
  exec(cmd: RemoteCommand, opts?: { stdin?: Secret; timeoutMs?: number }): Promise<VmResult>;
  close(): Promise<void>;
}

export function connectVm(target: VmTarget): Vm {
  const key = new Secret(readFileSync(target.sshd.privateKeyPath, 'utf8'), target.sshd.privateKeyPath);
  const log = createLogger({ level: 'warn' });
  const ex = new SshExecutor(
    { host: target.sshd.host, port: target.sshd.port, username: target.sshd.username, hostKeySha256: target.sshd.hostKeySha256, readyTimeoutMs: 10_000 },
    key,
    log,
  );
  const exec: Vm['exec'] = async (cmd, opts = {}) => {
    const r = await ex.exec({ cwd: target.deploy.path, ...cmd }, { timeoutMs: opts.timeoutMs ?? 120_000, ...(opts.stdin ? { stdin: opts.stdin } : {}) });
    const stdout = r.stdout.toString('utf8');
    return { code: r.exitCode, stdout, stderr: r.stderr, output: `${stdout}${r.stderr}` };
  };
  return {
    exec,
    compose: (args, opts = {}) =>
      exec({ argv: ['docker', 'compose', '-f', 'docker-compose.prod.yml', ...args], ...(opts.env ? { env: opts.env } : {}) }, opts),
    close: () => ex.close(),
  };
}

/** Polls until `probe` returns a value; fails with the last error after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Brings the VM to "release `tag` running, database at its head, no registry login left", the
 * way an operator would by hand. Idempotent. Throws with the command's output when a step fails.
 */
export async function bringUp(vm: Vm, registry: { address: string; username: string; password: string }, tag: string): Promise<void> {
  const must = async (what: string, p: Promise<VmResult>): Promise<VmResult> => {
    const r = await p;
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.output}`);
    return r;
  };
  await must('docker login', vm.exec({ argv: ['docker', 'login', registry.address, '-u', registry.username, '--password-stdin'] }, { stdin: new Secret(`${registry.password}\n`, 'registry password') }));
  const env = { IMAGE_TAG: tag };
  await must('compose pull', vm.compose(['pull'], { env, timeoutMs: 300_000 }));
  await must('docker logout', vm.exec({ argv: ['docker', 'logout', registry.address] }));
  await must('compose up', vm.compose(['up', '-d'], { env, timeoutMs: 300_000 }));
  // Over TCP, as the API connects: the socket answers while the entrypoint's socket-only server creates the database.
  await eventually('pg_isready', async () => ((await vm.compose(['exec', '-T', 'pgvector', 'pg_isready', '-h', '127.0.0.1', '-U', 'engramia'])).code === 0 ? true : undefined));
  await must('alembic upgrade head', vm.compose(['exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head'], { env }));
}
