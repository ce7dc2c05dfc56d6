import type { EnvSecrets } from '../../config/load.js';
import type { EnvironmentConfig } from '../../config/schema.js';
import type { JobReporter } from '../../jobs/reporter.js';
import type { OpsStore } from '../../jobs/store.js';
import type { Origin, Outbox, PostedRef } from '../../jobs/types.js';
import type { Logger } from '../../logger.js';
import type { Msg } from '../../render/model.js';
import type { SshExecutor } from '../../ssh/executor.js';
import type { Gate, Outcome, StepRecord } from '../types.js';

// The runbook kernel's vocabulary: what a runbook job carries, what a step sees and declares. Every
// runbook (deploy, rollback, maintenance, migrate, upgrade) and the engine speak it.

/** Job data of a runbook job: a deploy, or a rollback (where `version` is the target). */
export interface RunbookData {
  kind: 'deploy' | 'rollback' | 'maintenance' | 'migrate' | 'upgrade';
  jobId: string;
  env: string;
  version: string;
  /** From --maintenance / --no-maintenance; undefined means ask in the thread. */
  maintenance: boolean | undefined;
  dryRun: boolean;
  origin: Origin;
  requestedAt: string;
  state?: RunbookState;
}

export interface RunbookState {
  card?: PostedRef;
  steps: StepRecord[];
  outcome: Outcome;
  fromVersion?: string | null;
  pinnedBefore?: string | null;
  newHead?: string | null;
  dbRevision?: string | null;
  maintenance?: { on: boolean; reason: string };
  /** True once this job has put maintenance on: it must then say so until it is off again. */
  maintenanceOnByUs?: boolean;
  /** Whether `.env` asked for maintenance when the job began (read once, by the preflight). */
  maintenanceBefore?: boolean;
  gates: Record<string, Gate>;
  warnings: string[];
  /** Verification found deep health degraded: the job ends "succeeded with warnings". */
  degraded?: boolean;
  summary?: string;
  startedAt: string;
  /** Rollback: the verified pre-downgrade snapshot on the host. */
  snapshot?: { path: string; bytes: number };
  /** Rollback: the revision the target version expects (its image's alembic head). */
  targetHead?: string | null;
  downgraded?: boolean;
  /** Set when a stopping worker handed the job back; the next one says where it resumes. */
  checkpointed?: boolean;
  /** The target was refused before any change (not in the registry, or a revision no downgrade reaches): "Next" must not suggest it again. */
  targetRefused?: boolean;
  /** A registry credential may be on the host (login started, not yet removed): the job's end removes it. */
  registryLogin?: boolean;
  /** How alembic reaches the database: `exec` in the running container (default), or `run --rm` of the image when there is none. */
  alembicVia?: AlembicVia;
}

export interface StepContext {
  data: RunbookData;
  state: RunbookState;
  env: EnvironmentConfig;
  secrets: EnvSecrets;
  ssh: SshExecutor;
  store: OpsStore;
  reporter: JobReporter;
  outbox: Outbox;
  log: Logger;
  knownSecrets: string[];
  /** Messages a step has for the thread (verification's health report): the engine posts them before the step's own reply. */
  shown: Map<string, Msg[]>;
  /** Full output of the step running now, scrubbed; kept in memory only, for the file upload. */
  fullOutput: Map<string, string>;
  /** Writes the state into the job: after this, a restarted worker continues from here. */
  save(): Promise<void>;
  gateTimeoutMs: number;
  verifySettleMs: number;
  /** Aborted when the worker must stop now: steps that are safe to repeat are interrupted. */
  signal?: AbortSignal;
}

export type StepResult = { status: 'done' | 'skipped'; note?: string } | { status: 'wait'; until: number; gateId: string };

export interface StepDef {
  id: string;
  title(d: RunbookData): string;
  /** Whether running it again after an interruption is harmless. */
  safeToRepeat: boolean;
  /** Steps from here on may have changed what runs; a failure then offers a rollback. */
  changesRunningVersion?: boolean;
  run(ctx: StepContext, rec: StepRecord): Promise<StepResult>;
  /**
   * After an interruption, reads the host (without changing it) to tell whether the step already
   * took effect, so a finished step is not run again and an unsafe one need not be guessed at.
   */
  settle?(ctx: StepContext): Promise<Settled>;
  /**
   * A command of this step still running on the host after its worker died: `stop` it (default for
   * steps safe to repeat) or `wait` for it to end (a migration must never be killed halfway).
   */
  orphan?: 'stop' | 'wait';
  /**
   * The program this step starts inside engramia-api's container (e.g. `alembic`): it goes on there
   * when the host's client of `exec`/`run` dies, so recovery looks inside the container before settling.
   */
  runsInContainer?: string;
  /** Offer `step.skip` when the outcome is unknown: only where a later step would catch a wrong guess. */
  skippable?: boolean;
}

/** What the host shows about an interrupted step. */
export type Settled = { status: 'done' | 'not-run' | 'unknown'; note: string };

/** Which per-step limit of the environment's `timeouts` a command runs under. */
export type TimeoutKind = keyof EnvironmentConfig['timeouts'];

/** How alembic reaches the database: `exec` in the running container, or a one-off `run --rm` of the image. */
export type AlembicVia = 'exec' | 'run';
