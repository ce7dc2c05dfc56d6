#!/usr/bin/env node
import { parseRole, readEnvOptions } from './config/env.js';
import { loadConfig } from './config/load.js';
import { isChatOpsError } from './errors.js';
import { createLogger } from './logger.js';
import { startBot } from './runtime.js';
import { consoleMain } from './console/index.js';

async function main(): Promise<number> {
  let env, config, role;
  try {
    role = parseRole(process.argv.slice(2));
    env = readEnvOptions(process.env, role);
    if (env.slack.kind === 'console') return await consoleMain(env, role, process.argv.slice(2), process.env);
    config = loadConfig(env.configPath);
  } catch (err) {
    // Start-up errors go to stderr as plain text: the operator reads them, not a log pipeline.
    process.stderr.write(`engramia-chatops: cannot start.\n${isChatOpsError(err) ? err.message : String(err)}\n`);
    return 1;
  }
  const log = createLogger({ level: env.logLevel, base: { role } });
  let bot;
  try {
    bot = await startBot({ env, config, role, log, processEnv: process.env });
  } catch (err) {
    process.stderr.write(`engramia-chatops: cannot start.\n${isChatOpsError(err) ? err.message : String(err)}\n`);
    return 1;
  }
  log.info({ role, port: bot.port, adminPort: bot.adminPort, env: Object.keys(config.environments) }, 'engramia-chatops started');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, 'stopping: no new work, finishing the current step');
      bot.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
    // Give pino's async destination a moment to flush, then leave even if a handle lingers.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`engramia-chatops: fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
