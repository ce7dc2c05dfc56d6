// Process plumbing shared by redis.ts and sshd.ts: spawning long-lived servers that can never
// outlive the test process, capped log capture, free ports, throwaway directories.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// ---------------------------------------------------------------------------------------------
// Cleanup that works however the test process ends. 'exit' handlers run on normal exit and
// process.exit(), but not when the process is killed by a signal; and vitest tears its fork
// workers down in ways that skip them. So besides the 'exit' hook there is a tiny watchdog:
// a detached `sh` blocks reading a pipe whose only writer is this process. When this process
// dies for any reason the kernel closes the pipe, `read` hits EOF, and the watchdog acts.
// Detached, so a terminal Ctrl-C (SIGINT to the foreground group) doesn't take it out first.

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    // Only synchronous work is possible here.
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Runs `script` (sh, positional args `$1`…) once this process has died. Kill the result to cancel. */
function onParentDeath(script: string, args: string[]): ChildProcess {
  const watchdog = spawn('/bin/sh', ['-c', `read _ignored; ${script}`, 'watchdog', ...args], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  watchdog.on('error', () => {
    // Without /bin/sh we merely lose this safety net.
  });
  // Neither the watchdog nor its pipe may keep the event loop (and so vitest) alive.
  watchdog.unref();
  (watchdog.stdin as net.Socket | null)?.unref();
  return watchdog;
}

/**
 * A fresh 0700 directory under the OS temp dir, removed after the test process has exited
 * (not before: a server restarted later in the same run may still need it).
 */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // The pause lets servers killed at the same moment finish dying before their files go.
  onParentDeath('sleep 1; rm -rf "$1"', [dir]);
  return dir;
}

// ---------------------------------------------------------------------------------------------

/** Keeps the last `limit` characters; sshd at LogLevel VERBOSE logs several lines per connection. */
export class LogBuffer {
  private text = '';
  constructor(private readonly limit = 1_000_000) {}
  append(chunk: string | Buffer): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit) this.text = this.text.slice(this.text.length - this.limit);
  }
  toString(): string {
    return this.text;
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logs: LogBuffer;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  hasExited(): boolean;
  /** Sends `signal`, escalating to SIGKILL after `graceMs`; resolves once the process is gone. */
  terminate(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitInfo>;
}

/**
 * Spawns a long-running server with stdout+stderr captured into a LogBuffer, tracked for the
 * exit hook and guarded by a watchdog. Rejects if the binary cannot be spawned at all.
 */
export async function spawnManaged(
  command: string,
  args: string[],
  options: Omit<SpawnOptions, 'stdio'> = {},
): Promise<ManagedProcess> {
  installExitHook();
  const logs = new LogBuffer();
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => logs.append(d));
  child.stderr?.on('data', (d: Buffer) => logs.append(d));

  // A spawn failure (ENOENT, EACCES) surfaces as 'error' instead of 'spawn'.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`failed to spawn ${command}: ${err.message}`)));
  });
  // Later errors (e.g. a failed kill()) must not crash the test process as unhandled 'error' events.
  child.on('error', (err) => logs.append(`[spawnManaged] ${err.message}\n`));
  const pid = child.pid!;
  liveChildren.add(child);
  const watchdog = onParentDeath('kill -KILL "$1" 2>/dev/null', [String(pid)]);

  let done = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      liveChildren.delete(child);
      // The pid is free for reuse now; make sure the watchdog can never shoot a stranger.
      watchdog.kill('SIGKILL');
      resolve({ code, signal });
    });
  });

  const terminate = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<ExitInfo> => {
    if (done) return exited;
    child.kill(signal);
    if (signal !== 'SIGKILL') {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };

  return { child, pid, logs, exited, hasExited: () => done, terminate };
}

// ---------------------------------------------------------------------------------------------

/**
 * A port that was free a moment ago. There is an unavoidable race between closing our probe
 * socket and the server binding it, so callers retry on EADDRINUSE.
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not determine a free port'))));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns true. Gives up early if `proc` exits (the server failed to start,
 * its logs will say why) or after `timeoutMs`.
 */
export async function waitUntil(
  probe: () => Promise<boolean>,
  opts: { proc: ManagedProcess; timeoutMs: number; what: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 20;
  for (;;) {
    if (opts.proc.hasExited()) {
      const { code, signal } = await opts.proc.exited;
      throw new ProcessExitedError(opts.what, code, signal, opts.proc.logs.toString());
    }
    // Race the exit: if something else holds the port, the probe may hang talking to it while
    // our server has long since died of EADDRINUSE.
    const ok = await Promise.race([probe().catch(() => false), opts.proc.exited.then(() => false)]);
    if (ok) return;
    if (opts.proc.hasExited()) continue; // report it at the top of the loop
    if (Date.now() > deadline) {
      throw new Error(`${opts.what} not ready after ${opts.timeoutMs} ms. Output so far:\n${opts.proc.logs}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
}

export class ProcessExitedError extends Error {
  constructor(
    what: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly output: string,
  ) {
    super(`${what} exited during startup (code ${code}, signal ${signal}). Output:\n${output}`);
    this.name = 'ProcessExitedError';
  }
}

/**
 * Connects to host:port, writes `send` (if any) and collects what comes back until `done`
 * says it's enough, the peer closes, or `timeoutMs` passes. Used for readiness probes.
 */
export function tcpExchange(
  host: string,
  port: number,
  send: string | null,
  done: (received: string) => boolean,
  timeoutMs = 1_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = net.connect({ host, port });
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(received);
    };
    const timer = setTimeout(() => finish(new Error(`timeout talking to ${host}:${port}`)), timeoutMs);
    socket.once('error', (err) => finish(err));
    socket.once('connect', () => {
      if (send !== null) socket.write(send);
    });
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (done(received)) finish();
    });
    socket.once('end', () => finish());
  });
}
