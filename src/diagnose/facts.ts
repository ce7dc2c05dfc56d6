import type { DeepHealth, Probe, VersionInfo } from '../engramia/client.js';
import type { HostState } from '../engramia/host.js';
import type { ChatOpsError } from '../errors.js';

/** One remote command the diagnosis ran, with its output already scrubbed of secrets. */
export interface Ran {
  command: string;
  exitCode: number | null;
  output: string;
}

/** A probe that may not have run: the host could not be reached, or it made no sense (nothing to ask). */
export type Got<T> = { kind: 'ok'; value: T } | { kind: 'failed'; error: ChatOpsError } | { kind: 'skipped'; reason: string };

/**
 * What `.env` holds for a variable, as classified on the host: the value itself never leaves it.
 * `live` / `test` are values starting with `sk_live_` / `sk_test_`; `set` is any other non-empty value.
 */
export type EnvShape = 'missing' | 'empty' | 'live' | 'test' | 'set';

export type AlembicFacts =
  | { kind: 'skipped'; reason: string }
  | {
      kind: 'ran';
      /** The image alembic ran from: the running container (`exec`) or a throwaway one of the same image (`run`). */
      tag: string;
      via: 'exec' | 'run';
      current: Got<Ran & { revision: string | null }>;
      head: Got<Ran & { revision: string | null }>;
    };

/** Everything `diagnose` gathered, before any matching: the input of the pure symptom matcher. */
export interface DiagnoseFacts {
  env: string;
  /** `docker compose ps -a` and the `.env` pin / maintenance lines. */
  host: Got<HostState>;
  /** The last lines of the engramia-api log, scrubbed, oldest first. */
  logs: Got<string[]>;
  /** `.env` variables by shape (values never read off the host). */
  envFile: Got<Partial<Record<string, EnvShape>>>;
  version: Probe<VersionInfo>;
  deep: Probe<DeepHealth>;
  alembic: AlembicFacts;
  /** `psql -c 'SELECT version();'` in the pgvector container. */
  pgVersion: Got<Ran>;
}
