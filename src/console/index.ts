import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { pino } from 'pino';
import { Access } from '../commands/access.js';
import type { EnvOptions } from '../config/env.js';
import { loadConfig, resolveEnvSecrets, type Config, type Role } from '../config/load.js';
import { ChatOpsError, ErrorCode, isChatOpsError } from '../errors.js';
import type { Producer } from '../jobs/queue.js';
import { createLogger, type Logger } from '../logger.js';
import { startBot, type BotOptions } from '../runtime.js';
import { ConsoleOutbox } from './outbox.js';
import { CONSOLE_HELP, isConsoleUser, roleNames, startRepl } from './repl.js';

/** Who the console acts as when `--as` names no one and the config lists no deployer. */
export const DEFAULT_CONSOLE_USER = 'U0CONSOLE';
/**
 * Console jobs must never be taken by a Slack bot's workers sharing the Redis (nor the other way round):
 * unless CHATOPS_QUEUE_PREFIX says otherwise, the console has a queue of its own.
 */
export const CONSOLE_QUEUE_PREFIX = 'chatops-console';
/** On end of input, how long jobs still running may take before the console leaves anyway. */
const DRAIN_LIMIT_MS = 30 * 60_000;

/** `--as USER` / `--as=USER` from the command line; undefined when not given. */
export function parseAs(argv: readonly string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--as' || a.startsWith('--as='));
  if (i === -1) return undefined;
  const arg = argv[i]!;
  const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[i + 1];
  if (!value || !isConsoleUser(value)) throw new ChatOpsError(ErrorCode.ConfigInvalid, `--as needs a user id such as U02BOB, got "${(value ?? '').slice(0, 40)}"`, {});
  return value;
}

/** Who runs the console on this machine: the audit records it next to whoever `/as` names. */
export function osUserName(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): the environment is all there is.
    return env.USER?.trim() || env.LOGNAME?.trim() || `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The first deployer, so a fresh console can deploy; access rules then apply as in Slack. */
export function defaultConsoleUser(config: Config): string {
  return config.access.deployers.find((id) => /^[UW]/.test(id)) ?? config.access.approvers.find((id) => /^[UW]/.test(id)) ?? DEFAULT_CONSOLE_USER;
}

export interface ConsoleOptions {
  env: EnvOptions;
  config: Config;
  log: Logger;
  processEnv: NodeJS.ProcessEnv;
  argv: readonly string[];
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  workerOptions?: BotOptions['workerOptions'];
}

async function idle(producer: Producer, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  let quiet = 0;
  while (Date.now() < deadline) {
    const c = await producer.counts().catch(() => undefined);
    // Delayed jobs are parked at a gate (or the reaper's next run): nobody can answer them after the input ended.
    const busy = c ? (c.waiting ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0) : 1;
    quiet = busy === 0 ? quiet + 1 : 0;
    if (quiet >= 2) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Role `all` in one process, talking to a terminal instead of Slack: the same
 * command, job and rendering code, with ConsoleOutbox as the transport.
 * Resolves with the exit code.
 */
export async function runConsole(opts: ConsoleOptions): Promise<number> {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stdout;
  const { config, log } = opts;
  const user = parseAs(opts.argv) ?? defaultConsoleUser(config);
  const env: EnvOptions = { ...opts.env, queuePrefix: opts.processEnv.CHATOPS_QUEUE_PREFIX?.trim() ? opts.env.queuePrefix : CONSOLE_QUEUE_PREFIX };

  const secrets = resolveEnvSecrets(config, opts.processEnv);
  const knownSecrets = Object.values(secrets).flatMap((s) => [s.apiKey.reveal(), s.registryToken.reveal()]);
  // Jobs may print before the prompt exists; until then, plain lines.
  let print: (text: string) => void = (text) => void output.write(`${text}\n`);
  const outbox = new ConsoleOutbox({ print: (t) => print(t), knownSecrets });

  const bot = await startBot({ env, config, role: 'all', log, processEnv: opts.processEnv, outbox, ...(opts.workerOptions ? { workerOptions: opts.workerOptions } : {}) });
  const producer = bot.producer!;

  const roles = roleNames(config, user);
  const envs = Object.keys(config.environments).map((name) => (name === config.defaultEnv ? `${name} (default)` : name));
  output.write(
    [
      'Engramia ChatOps console: no Slack tokens are set, so commands are typed here and answers printed here.',
      `You are ${user}${roles.length ? ` (${roles.join(', ')})` : ' (no role in access: read-only commands only)'}. Environments: ${envs.join(', ')}.`,
      CONSOLE_HELP,
      ...(bot.adminPort !== undefined && env.admin ? [`Admin listener (ADMIN_PORT): ${adminUrl(env.admin.host, bot.adminPort)}/metrics and /healthz`] : []),
      '',
    ].join('\n'),
  );

  const repl = startRepl({ config, access: new Access(undefined, log), producer, log, metrics: bot.metrics, outbox, input, output, user, session: randomBytes(8).toString('hex'), osUser: osUserName(opts.processEnv) });
  print = repl.print;

  let forced: (() => void) | undefined;
  const interrupted = new Promise<'signal'>((resolve) => {
    let count = 0;
    const onSignal = () => {
      count += 1;
      if (count === 1) {
        // The prompt goes first: no new input while stopping, and a terminal leaves raw mode, so a second Ctrl-C is a real signal.
        repl.close();
        repl.print('Stopping: a running step finishes (or checkpoints) first. Press Ctrl-C again to leave at once.');
        resolve('signal');
      } else forced?.();
    };
    repl.onInterrupt(onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  const how = await Promise.race([repl.ended, interrupted]);
  if (how === 'eof') {
    // Piped input (`echo health | npm start`) ends before the answers arrive: let the jobs it started finish.
    if (!(await idle(producer, DRAIN_LIMIT_MS))) output.write('Still busy after the input ended; leaving the rest to the next start.\n');
  }
  repl.close();
  const closing = bot.close().then(
    () => 0,
    (err: unknown) => {
      log.error({ err: (err as Error).message }, 'error while stopping');
      return 1;
    },
  );
  return Promise.race([closing, new Promise<number>((resolve) => (forced = () => resolve(1)))]);
}

/**
 * `node dist/main.js` with no Slack tokens. The log goes to stderr (warnings only, unless LOG_LEVEL
 * says otherwise) so stdout stays the conversation, readable and pipeable.
 */
export async function consoleMain(env: EnvOptions, role: Role, argv: readonly string[], processEnv: NodeJS.ProcessEnv): Promise<number> {
  const fail = (message: string, hint = '') => {
    process.stderr.write(`engramia-chatops: cannot start the console.\n${message}\n${hint}`);
    return 1;
  };
  if (role !== 'all') {
    return fail(`--role ${role} needs Slack tokens: the console runs the app and the worker in one process.`, 'Set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN), or leave --role out.\n');
  }
  let config: Config;
  try {
    parseAs(argv);
    config = loadConfig(env.configPath);
  } catch (err) {
    return fail(
      isChatOpsError(err) ? err.message : String(err),
      'No Slack tokens are set (SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET, or SLACK_APP_TOKEN), so this is the local console; it still needs a config (CHATOPS_CONFIG).\n' +
        'To try the bot against a simulated host with nothing to configure: npm run demo\n',
    );
  }
  const log = createLogger({ level: processEnv.LOG_LEVEL?.trim() ? env.logLevel : 'warn', destination: pino.destination({ dest: 2, sync: false }), base: { role: 'console' } });
  try {
    return await runConsole({ env, config, log, processEnv, argv });
  } catch (err) {
    return fail(isChatOpsError(err) ? err.message : String(err));
  }
}

function adminUrl(host: string, port: number): string {
  // An unspecified bind address is reached on loopback; an IPv6 literal needs brackets in a URL.
  const reach = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
}
