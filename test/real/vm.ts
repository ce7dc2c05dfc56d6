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
