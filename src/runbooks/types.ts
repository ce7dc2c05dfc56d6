import type { ExecResult } from '../ssh/executor.js';

/** Where a step's state stands; saved in the job after every change. */
export type StepStatus = 'pending' | 'running' | 'done' | 'skipped' | 'failed';

export interface StepRecord {
  id: string;
  title: string;
  status: StepStatus;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  /** Shown next to the step: "skipped: maintenance not requested", "0.6.0 → 0.6.1". */
  note?: string;
  exitCode?: number | null;
  /** Last lines of output, already scrubbed of secrets. */
  outputTail?: string;
  /** The exact command, secrets masked, as the host saw it. */
  command?: string;
  /** Process group of the command running now on the host; cleared when it ends. */
  remotePid?: number;
  /** How many times the step was started: above 1 after a crash, a dropped connection or a retry. */
  attempts?: number;
  /** Id of the `step.*` gate asking what to do about this step's unknown outcome. */
  gateId?: string;
  /** The step parked the job on one of its own gates: "running" then means waiting, not interrupted. */
  parked?: boolean;
}

export type GateKind = 'maintenance' | 'rollback' | 'plan' | 'downgrade' | 'step';

/** A question the job waits on. Decided once, atomically, by someone allowed to. */
export interface GateState {
  id: string;
  kind: GateKind;
  /** Buttons' action_ids, from the contract. */
  go: string;
  noGo: string;
  /** A third choice (`step.skip`), only where skipping is safe. */
  skip?: string;
  question: string;
  postedTs?: string;
  /** When set, "go" needs this typed in a modal too (a downgrade to base). */
  confirmText?: string;
  createdAt: string;
  expiresAt: string;
  decision?: GateDecision;
  /** The gate message was already updated to show the decision. */
  shown?: boolean;
}

/** A gate as the job keeps it: with the hash of the plan it was asked about, so a press on an old plan is refused. */
export type Gate = GateState & { planHash: string };

export interface GateDecision {
  choice: 'go' | 'no-go' | 'skip' | 'expired';
  by?: string;
  at: string;
}

export type Outcome = 'running' | 'waiting' | 'succeeded' | 'succeeded_with_warnings' | 'failed' | 'cancelled';

/** The command output a step produced, for the thread reply. */
export interface StepOutput {
  result?: ExecResult;
  text?: string;
}
