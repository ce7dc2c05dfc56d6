// Runs the real Docker CLI against one test daemon: argv only (no shell), its own DOCKER_CONFIG
// so a `docker login` here never touches the machine user's ~/.docker.
import { execFile } from 'node:child_process';
import { DOCKER_CLI } from './requirements.js';

export interface DockerTarget {
  /** unix:///…/docker.sock of the test daemon. */
  readonly dockerHost: string;
  /** DOCKER_CONFIG folder for the test harness's own CLI calls (credentials, cli config). */
  readonly dockerConfig: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandFailedError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    super(`${argv.join(' ')} exited ${result.code}:\n${result.stderr || result.stdout}`);
    this.name = 'CommandFailedError';
  }
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
  /** Resolve with a non-zero code instead of throwing. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

/** Runs `command args…` (no shell); throws CommandFailedError on a non-zero exit unless allowFailure. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        env: { ...process.env, ...opts.env },
        cwd: opts.cwd,
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 600_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        const result = { stdout, stderr, code };
        if (err && !opts.allowFailure) reject(new CommandFailedError([command, ...args], result));
        else resolve(result);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** The environment that points the Docker CLI (and Compose) at `target`. */
export function dockerEnv(target: DockerTarget): Record<string, string> {
  return { DOCKER_HOST: target.dockerHost, DOCKER_CONFIG: target.dockerConfig };
}

export function docker(target: DockerTarget, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(DOCKER_CLI, args, { ...opts, env: { ...dockerEnv(target), ...opts.env } });
}
