import { isIP } from 'node:net';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { formatProblems, type ConfigProblem, type Role } from './load.js';
import { Secret } from './secret.js';

export type SlackMode =
  | { kind: 'http'; botToken: Secret; signingSecret: Secret }
  | { kind: 'socket'; botToken: Secret; appToken: Secret }
  /** A worker-only process: it posts with the bot token and never receives from Slack, so it needs no signing secret or app token. */
  | { kind: 'post'; botToken: Secret }
  | { kind: 'console' };

export interface EnvOptions {
  slack: SlackMode;
  /** Needed by workers too, for posting progress; undefined only in console mode. */
  slackApiUrl: string;
  port: number;
  /**
   * The admin listener (/metrics, the detailed /healthz): every role serves it, on loopback unless
   * ADMIN_HOST says otherwise. Undefined for the console when ADMIN_PORT is not set: a local REPL
   * has nobody scraping it, and two consoles on one machine must not fight over port 9464.
   */
  admin: AdminListen | undefined;
  redisUrl: string;
  configPath: string;
  logLevel: string;
  /** Redis key prefix; lets several bots (or test runs) share one Redis. Not in the contract: an addition. */
  queuePrefix: string;
  /** Worker tuning (not in the contract: additions). Unset means the worker's defaults. */
  worker: { jobLockMs?: number; stalledIntervalMs?: number; shutdownGraceMs?: number; reaperIntervalMs?: number; maxStalledCount?: number };
}

export interface AdminListen {
  host: string;
  /** 0: any free port (tests run many bots at once); the bound port is on `Bot.adminPort`. */
  port: number;
}

export const DEFAULT_ADMIN_PORT = 9464;
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads the contract's environment variables. Pure: takes the environment as an
 * argument so tests never mutate process.env.
 */
export function readEnvOptions(env: NodeJS.ProcessEnv = process.env, role: Role = 'all'): EnvOptions {
  const problems: ConfigProblem[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const botToken = get('SLACK_BOT_TOKEN');
  const signingSecret = get('SLACK_SIGNING_SECRET');
  const appToken = get('SLACK_APP_TOKEN');

  if (botToken !== undefined && !botToken.startsWith('xoxb-')) problems.push({ path: 'SLACK_BOT_TOKEN', message: 'must be a bot token starting with xoxb-' });
  if (appToken !== undefined && !appToken.startsWith('xapp-')) problems.push({ path: 'SLACK_APP_TOKEN', message: 'must be an app-level token starting with xapp- (Socket Mode)' });

  let slack: SlackMode = { kind: 'console' };
  if (botToken === undefined && appToken === undefined) {
    slack = { kind: 'console' };
  } else if (botToken === undefined) {
    problems.push({ path: 'SLACK_BOT_TOKEN', message: 'is required when SLACK_APP_TOKEN is set (the bot posts with it)' });
  } else if (appToken !== undefined) {
    slack = { kind: 'socket', botToken: new Secret(botToken, 'SLACK_BOT_TOKEN'), appToken: new Secret(appToken, 'SLACK_APP_TOKEN') };
  } else if (signingSecret === undefined && role === 'worker') {
    slack = { kind: 'post', botToken: new Secret(botToken, 'SLACK_BOT_TOKEN') };
  } else if (signingSecret === undefined) {
    problems.push({ path: 'SLACK_SIGNING_SECRET', message: 'is required in HTTP mode to verify requests from Slack (or set SLACK_APP_TOKEN for Socket Mode)' });
  } else {
    slack = { kind: 'http', botToken: new Secret(botToken, 'SLACK_BOT_TOKEN'), signingSecret: new Secret(signingSecret, 'SLACK_SIGNING_SECRET') };
  }

  let slackApiUrl = get('SLACK_API_URL') ?? 'https://slack.com/api/';
  if (!/^https?:\/\/[^\s]+$/.test(slackApiUrl)) problems.push({ path: 'SLACK_API_URL', message: 'must be an http(s) URL such as https://slack.com/api/' });
  if (!slackApiUrl.endsWith('/')) slackApiUrl += '/';

  const port = portNumber('PORT', get('PORT') ?? '3000', problems);
  const adminPortText = get('ADMIN_PORT');
  const adminPort = portNumber('ADMIN_PORT', adminPortText ?? String(DEFAULT_ADMIN_PORT), problems);
  const adminHost = get('ADMIN_HOST') ?? DEFAULT_ADMIN_HOST;
  if (isIP(adminHost) === 0 && !HOST_NAME.test(adminHost)) problems.push({ path: 'ADMIN_HOST', message: `must be an IP address or host name to bind, such as 127.0.0.1, got "${adminHost.slice(0, 60)}"` });
  const admin = slack.kind === 'console' && adminPortText === undefined ? undefined : { host: adminHost, port: adminPort };

  const redisUrl = get('REDIS_URL') ?? 'redis://127.0.0.1:6379';
  if (!/^rediss?:\/\//.test(redisUrl)) problems.push({ path: 'REDIS_URL', message: 'must be a redis:// or rediss:// URL' });

  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!LEVELS.includes(logLevel)) problems.push({ path: 'LOG_LEVEL', message: `must be one of ${LEVELS.join(', ')}` });

  const queuePrefix = get('CHATOPS_QUEUE_PREFIX') ?? 'chatops';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(queuePrefix)) problems.push({ path: 'CHATOPS_QUEUE_PREFIX', message: 'must be 1-64 letters, digits, "_" or "-"' });

  const worker: EnvOptions['worker'] = {};
  const millis = (name: string, key: keyof EnvOptions['worker'], min: number, max: number) => {
    const text = get(name);
    if (text === undefined) return;
    const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) problems.push({ path: name, message: `must be a whole number of milliseconds from ${min} to ${max}, got "${text}"` });
    else worker[key] = n;
  };
  millis('CHATOPS_JOB_LOCK_MS', 'jobLockMs', 1000, 600_000);
  millis('CHATOPS_STALLED_INTERVAL_MS', 'stalledIntervalMs', 500, 600_000);
  millis('CHATOPS_SHUTDOWN_GRACE_MS', 'shutdownGraceMs', 0, 3_600_000);
  millis('CHATOPS_REAPER_INTERVAL_MS', 'reaperIntervalMs', 500, 3_600_000);
  const stalls = get('CHATOPS_JOB_MAX_STALLS');
  if (stalls !== undefined) {
    if (/^\d{1,3}$/.test(stalls)) worker.maxStalledCount = Number(stalls);
    else problems.push({ path: 'CHATOPS_JOB_MAX_STALLS', message: `must be a whole number from 0 to 999, got "${stalls}"` });
  }

  if (problems.length > 0) {
    throw new ChatOpsError(ErrorCode.ConfigInvalid, formatProblems('environment', problems), { file: 'environment', problems });
  }
  return { slack, slackApiUrl, port, admin, redisUrl, configPath: get('CHATOPS_CONFIG') ?? './chatops.yml', logLevel, queuePrefix, worker };
}

function portNumber(name: string, text: string, problems: ConfigProblem[]): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push({ path: name, message: `must be a port number 0-65535, got "${text}"` });
  return port;
}

export function parseRole(argv: readonly string[]): Role {
  const i = argv.findIndex((a) => a === '--role' || a.startsWith('--role='));
  if (i === -1) return 'all';
  const arg = argv[i]!;
  const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[i + 1];
  if (value === 'all' || value === 'app' || value === 'worker') return value;
  throw new ChatOpsError(ErrorCode.ConfigInvalid, `--role must be all, app or worker, got "${(value ?? '').slice(0, 20)}"`, {});
}
