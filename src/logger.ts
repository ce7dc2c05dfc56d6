import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type DestinationStream, type Logger } from 'pino';
import { scrub } from './security/scrub.js';

export type { Logger };

const logContext = new AsyncLocalStorage<Record<string, unknown>>();

/**
 * Runs `fn` so that every line logged inside it, by whichever logger, carries `fields`: code shared
 * by all jobs (the SSH connection, the Slack client, the outbox) logs with the process's logger, and
 * its lines must still say which job caused them. Work started inside (timers, sockets, delivery
 * loops) keeps the fields: the job that opened an SSH connection is named on its later lines too.
 */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  return logContext.run(fields, fn);
}

// Paths that could carry a secret if someone logs a request or options object whole.
const REDACT = [
  'token',
  '*.token',
  'password',
  '*.password',
  'privateKey',
  '*.privateKey',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-slack-signature"]',
  'signingSecret',
  '*.signingSecret',
];

export function createLogger(opts: { level: string; destination?: DestinationStream; base?: Record<string, unknown> }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'engramia-chatops', ...opts.base },
      redact: { paths: REDACT, censor: '[redacted]' },
      // Paths catch fields by name; a token inside a message or an error text (a host's output, a URL
      // with its password) has no name, so every line is also scrubbed of token shapes as it is written.
      hooks: { streamWrite: (line) => scrub(line) },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Fields a child logger already binds are left out, so a line never carries a key twice.
      mixin(_obj, _level, logger) {
        const fields = logContext.getStore();
        if (!fields) return {};
        const bound = logger.bindings();
        return Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== undefined && !(k in bound)));
      },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
