// Small helpers shared by the benchmarks added for issue 8: percentiles, polling, the bot in this
// process or as `node dist/main.js` processes, and /proc memory readings.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { readEnvOptions } from '../src/config/env.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { startBot, type Bot, type BotOptions } from '../src/runtime.js';

export const MAIN_JS = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));

/** Nearest-rank percentile (p in 0..100) of the values; NaN for none. */
export function percentile(values: number[], p: number): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls fn until it returns something truthy; throws after timeoutMs naming `what`. */
export async function until<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 120_000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The bot in this process (as the deploy bench runs it), with the worker registered before it returns. */
export async function startInProcessBot(configPath: string, processEnv: NodeJS.ProcessEnv, opts: { role?: BotOptions['role']; workerOptions?: BotOptions['workerOptions']; logs?: string[] } = {}): Promise<{ bot: Bot; url: string }> {
  const logs = opts.logs;
  const log = createLogger({ level: 'info', destination: { write: (s: string) => void logs?.push(s) } });
  const bot = await startBot({ env: readEnvOptions(processEnv), config: loadConfig(configPath), role: opts.role ?? 'all', log, processEnv, ...(opts.workerOptions ? { workerOptions: opts.workerOptions } : {}) });
  if ((opts.role ?? 'all') !== 'app') {
    try {
      await until(async () => (await bot.producer!.workerCount().catch(() => 0)) > 0, 'the bot worker to register', 20_000, 50);
    } catch (err) {
      await bot.close();
      throw err;
    }
  }
  return { bot, url: `http://127.0.0.1:${bot.port}` };
}

/** Throws unless dist/main.js exists; warns when a file under src/ is newer than it (run `npm run build`). */
export function requireBuild(progress: (l: string) => void): void {
  let built: number;
  try {
    built = statSync(MAIN_JS).mtimeMs;
  } catch {
    throw new Error('bench: dist/main.js is missing: run `npm run build` first (this benchmark runs `node dist/main.js`)');
  }
  const newest = (dir: string): number => {
    let m = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      m = Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return m;
  };
  if (newest(SRC_DIR) > built) progress('note: src/ has changes newer than dist/: run `npm run build` so the process measured is the current code');
}

export interface BotProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<unknown>;
  /** SIGTERM, SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** `node dist/main.js --role ROLE` with the given environment (and PATH), output captured. */
export function spawnBot(role: 'all' | 'app' | 'worker', env: NodeJS.ProcessEnv, nodeArgs: string[] = []): BotProcess {
  const child = spawn(process.execPath, [...nodeArgs, MAIN_JS, '--role', role], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = child.exitCode !== null ? Promise.resolve() : once(child, 'exit');
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM, …). */
export function procStatusKb(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`bench: no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/**
 * Waits until no Slack budget kept in Redis is spent (the pacer deletes a key once its bucket is full again),
 * so a round starts in a rested channel, as a deploy after a quiet spell does. Returns how long that took.
 */
export async function restSlackBudget(redisUrl: string, timeoutMs = 15_000): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const t0 = Date.now();
  try {
    await until(async () => (await redis.keys('*:slack-pace:*')).length === 0, 'the Slack budget to refill', timeoutMs, 20);
    return Date.now() - t0;
  } finally {
    redis.disconnect();
  }
}

// Table cells: a missing or undefined number prints as "—".
export const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : '—');
export const ms1 = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '—');
export const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '—');
export const ratio = (a: number, b: number) => x(a / b);
