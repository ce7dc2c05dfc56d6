import type { EnvSecrets } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import type { Msg } from '../render/model.js';
import type { SshExecutor } from '../ssh/executor.js';
import type { CurrentJobView } from '../render/current-job.js';
import type { OpsStore } from './store.js';

// What every read command (version, health, status, logs, diagnose, migrations) is given and
// returns: a module of its own, so the handlers do not import each other for their types.

export interface ReadJobContext {
  jobId: string;
  /** Locks and maintenance times; absent where a caller only needs health. */
  store?: OpsStore;
  /** What the job holding the lock is doing, and where its thread is. */
  lookupJob?: (id: string) => Promise<CurrentJobView | undefined>;
  env: EnvironmentConfig;
  secrets: EnvSecrets;
  ssh: SshExecutor;
  /** Values scrubbed from host output that is shown whole (logs). */
  knownSecrets?: readonly string[];
}

export interface ReadJobResult {
  msg: Msg;
  outcome: string;
  /** Output too long for a message: posted as a file in the message's thread. */
  file?: { filename: string; title: string; content: string };
}
