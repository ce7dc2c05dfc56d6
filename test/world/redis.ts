// A real redis-server for tests, on a free loopback port, configured purely via command-line args
// so nothing on the developer's machine (/etc/redis/redis.conf, a system redis on 6379) matters.
import { findBinary, INSTALL_COMMAND } from './requirements.js';
import {
  findFreePort,
  makeTempDir,
  ProcessExitedError,
  sleep,
  spawnManaged,
  tcpExchange,
  waitUntil,
  type ManagedProcess,
} from './proc.js';

export interface StartRedisOptions {
  /** Persist writes to an append-only file in `dir` so they survive kill()/restart(). Default false. */
  appendonly?: boolean;
  /** Data directory (AOF lives here). Default: a fresh temp dir, removed when the test process exits. */
  dir?: string;
  /** Fixed port. Default: a free one. */
  port?: number;
}

export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly dir: string;
  /** Graceful shutdown (SIGTERM: redis flushes the AOF), escalating to SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** Simulated crash: SIGKILL. With appendonly + appendfsync everysec up to ~1 s of writes may be lost. */
  kill(): Promise<void>;
  /** Stops the server if it is running (gracefully), then starts it again on the same port and dir. */
  restart(): Promise<void>;
  /** stdout+stderr of the current (or last) redis-server process. */
  logs(): string;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 20_000;

/** True once the server answers PING with +PONG (not -LOADING while it replays the AOF). */
export async function redisAnswersPing(port: number, host = HOST): Promise<boolean> {
  const reply = await tcpExchange(host, port, 'PING\r\n', (r) => r.includes('\r\n'));
  return reply.startsWith('+PONG');
}

function redisArgs(port: number, dir: string, appendonly: boolean): string[] {
  return [
    '--port', String(port),
    '--bind', HOST,
    '--save', '', // no RDB snapshots: durability, when wanted, comes from the AOF only
    '--appendonly', appendonly ? 'yes' : 'no',
    '--appendfsync', 'everysec',
    '--maxmemory-policy', 'noeviction', // BullMQ requires noeviction
    '--dir', dir,
    '--daemonize', 'no',
    '--protected-mode', 'no',
  ];
}

const isAddrInUse = (err: unknown): boolean =>
  err instanceof ProcessExitedError && /address already in use/i.test(err.output);

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = findBinary('redis-server');
  if (!bin) throw new Error(`redis-server not found on PATH. Install it with:\n  ${INSTALL_COMMAND}`);
  const appendonly = opts.appendonly ?? false;
  const dir = opts.dir ?? makeTempDir('engramia-redis-');

  let current: ManagedProcess | null = null;
  let lastLogs = '';

  const launch = async (port: number): Promise<void> => {
    const proc = await spawnManaged(bin, redisArgs(port, dir, appendonly), { cwd: dir });
    current = proc;
    try {
      await waitUntil(() => redisAnswersPing(port), { proc, timeoutMs: READY_TIMEOUT_MS, what: `redis-server on port ${port}` });
    } catch (err) {
      lastLogs = proc.logs.toString();
      await proc.terminate('SIGKILL');
      current = null;
      throw err;
    }
  };

  // Someone may grab the probed port before redis binds it: pick another one. A port fixed by
  // the caller fails right away instead.
  let port = opts.port ?? (await findFreePort());
  for (let attempt = 1; ; attempt++) {
    try {
      await launch(port);
      break;
    } catch (err) {
      if (opts.port !== undefined || !isAddrInUse(err) || attempt >= 5) throw err;
      port = await findFreePort();
    }
  }
  const fixedPort = port;

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc: ManagedProcess | null = current;
    if (!proc) return;
    await proc.terminate(signal, 10_000);
    lastLogs = proc.logs.toString();
    current = null;
  };

  return {
    host: HOST,
    port: fixedPort,
    url: `redis://${HOST}:${fixedPort}`,
    dir,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async restart() {
      await halt('SIGTERM');
      // redis binds with SO_REUSEADDR, so TIME_WAIT leftovers don't block it; but if another
      // process took the port while we were down, give it a few seconds before failing.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(fixedPort);
          return;
        } catch (err) {
          if (!isAddrInUse(err) || attempt >= 5) throw err;
          await sleep(200 * attempt);
        }
      }
    },
    logs: () => (current ? (current as ManagedProcess).logs.toString() : lastLogs),
  };
}
