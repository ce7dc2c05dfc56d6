import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { NodeSSH } from 'node-ssh';
import type { ClientChannel } from 'ssh2';
import type { Secret } from '../config/secret.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { renderCommand, shellQuote, type RemoteCommand } from './quote.js';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  hostKeySha256: string;
  readyTimeoutMs: number;
  /**
   * Commands running at once on the one connection. OpenSSH refuses sessions past `MaxSessions`
   * (10 by default) with a channel-open failure; two are left for stopping timed-out commands.
   */
  maxSessions?: number;
}

const DEFAULT_MAX_SESSIONS = 8;

/** Hands out at most `size` slots; the rest wait in order. */
class Slots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(size: number) {
    this.#free = Math.max(1, size);
  }

  async take(): Promise<() => void> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free += 1;
    };
  }
}

export interface ExecOptions {
  /** Per-command limit; when it passes, the remote process group is killed, not just abandoned. */
  timeoutMs: number;
  /** Written to the command's stdin, then closed. The only way secrets reach the host. */
  stdin?: string | Secret;
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Output kept beyond this is dropped from the front (the tail matters most). */
  maxOutputBytes?: number;
  /**
   * Called with the remote process group id as soon as the command starts. A job records it, so
   * a worker that takes the job over after a crash can find a command still running on the host.
   */
  onStart?: (pid: number) => void;
  /** Aborting stops the remote process group (TERM, then KILL) and rejects with INTERRUPTED. */
  signal?: AbortSignal;
}

export interface ExecResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
  durationMs: number;
  truncated: boolean;
}

/** `ssh-keygen -lf` style: SHA256:<unpadded base64 of the SHA-256 of the key blob>. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

const PID_MARKER = '__chatops_pid=';
const KILL_GRACE_MS = 1500;
/** Observers of the connection's life, for metrics; the executor works the same without them. */
export interface SshHooks {
  /** Every connection attempt; `reconnect` is true once a first connection had been opened. */
  onConnect?(outcome: 'ok' | 'failed', reconnect: boolean): void;
}

/** Connection attempts before a step sees the failure; a refused or reset connection is often a restarting sshd. */
const CONNECT_ATTEMPTS = 3;
const CONNECT_BACKOFF_MS = 300;

/**
 * One SSH connection per host, shared by every step that runs there and
 * re-opened when it drops. Host keys are pinned: there is no trust on first use.
 */
export class SshExecutor {
  #ssh: NodeSSH | undefined;
  #connecting: Promise<NodeSSH> | undefined;
  #closed = false;
  #opened = 0;

  constructor(
    readonly target: SshTarget,
    private readonly privateKey: Secret,
    private readonly log: Logger,
    private readonly hooks: SshHooks = {},
  ) {
    this.#sessions = new Slots(target.maxSessions ?? DEFAULT_MAX_SESSIONS);
  }

  readonly #sessions: Slots;

  get label(): string {
    return `${this.target.username}@${this.target.host}:${this.target.port}`;
  }

  async exec(cmd: RemoteCommand, opts: ExecOptions): Promise<ExecResult> {
    const command = renderCommand(cmd);
    const release = await this.#sessions.take();
    try {
      const ssh = await this.#connection();
      return await this.#run(ssh, command, opts);
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const ssh = this.#ssh;
    this.#ssh = undefined;
    ssh?.dispose();
  }

  async #connection(): Promise<NodeSSH> {
    if (this.#closed) throw new ChatOpsError(ErrorCode.SshDisconnected, `SSH executor for ${this.label} is closed`, { host: this.label });
    if (this.#ssh?.isConnected()) return this.#ssh;
    this.#connecting ??= this.#openWithRetry().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #openWithRetry(): Promise<NodeSSH> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#open();
      } catch (err) {
        // A wrong host key or a refused login will not fix itself: report it at once.
        const retriable = err instanceof ChatOpsError && err.code === ErrorCode.SshConnectFailed;
        if (!retriable || attempt >= CONNECT_ATTEMPTS || this.#closed) throw err;
        const wait = CONNECT_BACKOFF_MS * 2 ** (attempt - 1);
        this.log.warn({ host: this.label, attempt, waitMs: wait, err: (err as Error).message }, 'ssh connect failed; retrying');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** True while any process of the group `pid` leads still runs on the host. */
  async groupAlive(pid: number): Promise<boolean> {
    const res = await this.#runScript(groupAliveScript(pid), 10_000);
    return res.stdout.toString('utf8').trim() === 'alive';
  }

  /** Stops a process group left behind by a crashed worker or a dropped connection. */
  async stopGroup(pid: number): Promise<boolean> {
    const ssh = await this.#connection();
    return this.#killGroup(ssh, pid);
  }

  /** Waits for a process group to end by itself; false if it still runs after `timeoutMs`. */
  async waitGroupGone(pid: number, timeoutMs: number, pollMs = 500): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (await this.groupAlive(pid)) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return true;
  }

  async #runScript(script: string, timeoutMs: number): Promise<ExecResult> {
    const release = await this.#sessions.take();
    try {
      const ssh = await this.#connection();
      return await this.#run(ssh, script, { timeoutMs });
    } finally {
      release();
    }
  }

  async #open(): Promise<NodeSSH> {
    const { host, port, username, hostKeySha256, readyTimeoutMs } = this.target;
    const sock = await openSocket(host, port, readyTimeoutMs, this.label);
    let presented: string | undefined;
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        sock,
        username,
        privateKey: this.privateKey.reveal(),
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          presented = fingerprintSha256(key);
          return presented === hostKeySha256;
        },
      });
    } catch (err) {
      sock.destroy();
      ssh.dispose();
      this.hooks.onConnect?.('failed', this.#opened > 0);
      if (presented !== undefined && presented !== hostKeySha256) {
        throw new ChatOpsError(
          ErrorCode.SshHostKeyMismatch,
          `host key of ${this.label} does not match the pinned fingerprint`,
          { host: this.label, expected: hostKeySha256, presented },
          { cause: err },
        );
      }
      const message = (err as Error).message ?? String(err);
      if (/authentication methods failed/i.test(message)) {
        throw new ChatOpsError(ErrorCode.SshAuthFailed, `SSH login as ${username} refused by ${this.label}`, { host: this.label, username }, { cause: err });
      }
      throw new ChatOpsError(ErrorCode.SshConnectFailed, `SSH connection to ${this.label} failed: ${message}`, { host: this.label, reason: message }, { cause: err });
    }
    const client = ssh.connection!;
    // node-ssh removes its own 'error' listener once connected; without ours an ECONNRESET would crash the process.
    client.on('error', (err: Error) => {
      this.log.warn({ host: this.label, err: err.message }, 'ssh connection error');
    });
    client.on('close', () => {
      if (this.#ssh === ssh) this.#ssh = undefined;
    });
    this.#ssh = ssh;
    this.#opened += 1;
    this.hooks.onConnect?.('ok', this.#opened > 1);
    this.log.debug({ host: this.label, connection: this.#opened }, 'ssh connected');
    return ssh;
  }

  #run(ssh: NodeSSH, command: string, opts: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    const maxBytes = opts.maxOutputBytes ?? 4 * 1024 * 1024;
    // The login shell of an exec session leads its own process group (sshd calls setsid),
    // so $$ names the whole group: on timeout we can kill everything it started.
    const wrapped = `printf '%s\\n' "${PID_MARKER}$$" >&2; ${command}`;
    return new Promise<ExecResult>((resolve, reject) => {
      const stdoutChunks: Buffer[] = [];
      let stdoutBytes = 0;
      let truncated = false;
      let stderr = '';
      let pid: number | undefined;
      const splitters = {
        stdout: lineSplitter((line) => opts.onLine?.('stdout', line)),
        stderr: lineSplitter((line) => {
          if (pid === undefined && line.startsWith(PID_MARKER)) {
            const n = Number(line.slice(PID_MARKER.length));
            if (Number.isInteger(n) && n > 1) {
              pid = n;
              opts.onStart?.(n);
            }
            return;
          }
          stderr += `${line}\n`;
          if (stderr.length > maxBytes) {
            stderr = stderr.slice(-maxBytes);
            truncated = true;
          }
          opts.onLine?.('stderr', line);
        }),
      };
      let settled = false;
      let channel: ClientChannel | undefined;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => {
        finish(() => {
          channel?.close();
          void this.#killGroup(ssh, pid).then((killed) =>
            reject(new ChatOpsError(ErrorCode.Interrupted, `command interrupted on ${this.label}: the worker is stopping`, { host: this.label, remotePid: pid, killed })),
          );
        });
      };
      const timer = setTimeout(() => {
        finish(() => {
          channel?.close();
          void this.#killGroup(ssh, pid).then(
            (killed) =>
              reject(
                new ChatOpsError(ErrorCode.SshTimeout, `command timed out after ${Math.round(opts.timeoutMs / 1000)} s on ${this.label}`, {
                  host: this.label,
                  timeoutMs: opts.timeoutMs,
                  remotePid: pid,
                  killed,
                  stderrTail: stderr.slice(-2000),
                }),
              ),
          );
        });
      }, opts.timeoutMs);
      if (opts.signal?.aborted) {
        queueMicrotask(onAbort);
      } else {
        opts.signal?.addEventListener('abort', onAbort, { once: true });
      }

      ssh.connection!.exec(wrapped, (err, ch) => {
        if (err) {
          finish(() => reject(new ChatOpsError(ErrorCode.SshDisconnected, `could not start a command on ${this.label}: ${err.message}`, { host: this.label, started: false }, { cause: err })));
          return;
        }
        if (settled) {
          // Timed out or aborted before the channel opened: end it before the command gets far.
          ch.close();
          return;
        }
        channel = ch;
        let exitCode: number | null = null;
        let signal: string | null = null;
        let gotExit = false;
        ch.on('data', (chunk: Buffer) => {
          splitters.stdout.push(chunk);
          stdoutChunks.push(chunk);
          stdoutBytes += chunk.length;
          while (stdoutBytes > maxBytes && stdoutChunks.length > 1) {
            stdoutBytes -= stdoutChunks.shift()!.length;
            truncated = true;
          }
        });
        ch.stderr.on('data', (chunk: Buffer) => splitters.stderr.push(chunk));
        ch.on('exit', (code: number | null, sig?: string) => {
          gotExit = true;
          exitCode = code;
          signal = sig ?? null;
        });
        ch.on('close', () => {
          splitters.stdout.end();
          splitters.stderr.end();
          if (!gotExit) {
            // The channel ended without an exit status: the connection dropped, so the outcome is unknown.
            finish(() =>
              reject(
                new ChatOpsError(ErrorCode.SshDisconnected, `connection to ${this.label} dropped while the command ran; its outcome is unknown`, {
                  host: this.label,
                  started: true,
                  remotePid: pid,
                }),
              ),
            );
            return;
          }
          finish(() =>
            resolve({ command, exitCode, signal, stdout: Buffer.concat(stdoutChunks), stderr, durationMs: Date.now() - started, truncated }),
          );
        });
        const input = opts.stdin === undefined ? undefined : typeof opts.stdin === 'string' ? opts.stdin : opts.stdin.reveal();
        if (input !== undefined) ch.write(input.endsWith('\n') ? input : `${input}\n`);
        // Always close stdin, so nothing on the host waits for input that will never come.
        ch.end();
      });
    });
  }

  /** Stops a timed-out command's whole process group: TERM, a grace period, then KILL. */
  async #killGroup(ssh: NodeSSH, pid: number | undefined): Promise<boolean> {
    if (pid === undefined || !ssh.isConnected()) return false;
    const script = stopGroupScript(pid, KILL_GRACE_MS);
    try {
      const res = await this.#run(ssh, script, { timeoutMs: KILL_GRACE_MS + 5000 });
      return res.exitCode === 0;
    } catch (err) {
      this.log.warn({ host: this.label, pid, err: (err as Error).message }, 'could not kill timed-out remote command');
      return false;
    }
  }
}

function openSocket(host: string, port: number, timeoutMs: number, label: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ChatOpsError(ErrorCode.SshConnectFailed, `SSH connection to ${label} timed out after ${timeoutMs} ms`, { host: label, reason: 'timeout' }));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      // ssh2 leaves Nagle on; every exec channel would otherwise wait ~40 ms on a delayed ACK.
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ChatOpsError(ErrorCode.SshConnectFailed, `SSH connection to ${label} failed: ${err.code ?? err.message}`, { host: label, reason: err.code ?? err.message }, { cause: err }));
    });
  });
}

function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk.toString('utf8');
      let i: number;
      while ((i = rest.indexOf('\n')) !== -1) {
        emit(rest.slice(0, i).replace(/\r$/, ''));
        rest = rest.slice(i + 1);
      }
    },
    end() {
      if (rest !== '') emit(rest);
      rest = '';
    },
  };
}

// These run in the SSH user's login shell, which may be dash (`/bin/sh`, useradd's default on Debian):
// dash's `kill` takes no `--` ("Illegal number: -"), so `kill -0 -- -PID` failed there and a live group
// looked gone, and a timed-out command was never stopped. `kill -SIG -PID` means the group in dash and bash.

/** Prints `alive` while any process of the group `pid` leads runs, else `gone`. */
export function groupAliveScript(pid: number): string {
  return `kill -0 ${shellQuote(`-${pid}`)} 2>/dev/null && echo alive || echo gone`;
}

/** TERM to the group, up to `graceMs` for it to end, then KILL; exits 0 when the group is gone or was killed. */
export function stopGroupScript(pid: number, graceMs: number): string {
  const g = shellQuote(`-${pid}`);
  return (
    `kill -TERM ${g} 2>/dev/null || exit 0; ` +
    `i=0; while [ $i -lt ${Math.ceil(graceMs / 100)} ]; do kill -0 ${g} 2>/dev/null || exit 0; sleep 0.1; i=$((i+1)); done; ` +
    `kill -KILL ${g} 2>/dev/null; exit 0`
  );
}
