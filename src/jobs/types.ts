import type { Msg } from '../render/model.js';

/** Where a job came from and where its messages go. Transport-neutral. */
export interface Origin {
  transport: 'slack' | 'console';
  channel: string;
  user: string;
  /** Slack's response_url: used only when the bot cannot post to the channel. */
  responseUrl?: string;
  /** Unique per request (Slack's trigger_id): a replayed request is recognised by it. */
  requestId?: string;
  /** Console: one id per running console, so `/as` inside it is still known to be the same person. */
  session?: string;
  /** Console: the operating-system user running it, for the audit. */
  osUser?: string;
}

/** Jobs that only read: the one list the command path and the worker both dispatch on. */
export const READ_JOB_NAMES = ['health', 'version', 'migrations', 'status', 'logs', 'diagnose'] as const;
export type ReadJobName = (typeof READ_JOB_NAMES)[number];

export function isReadJobName(name: string): name is ReadJobName {
  return (READ_JOB_NAMES as readonly string[]).includes(name);
}

export interface ReadJobData {
  kind: ReadJobName;
  env: string;
  origin: Origin;
  requestedAt: string;
  /** `logs`: how many lines, already checked against the grammar's cap. */
  tail?: number;
}


export interface PostedRef {
  channel: string;
  ts: string;
}

/**
 * How jobs talk to people. Slack and the console implement it; jobs never
 * know which one they use.
 */
/** What a transport says about a call it could not make: whether trying again can help, and when. */
export interface DeliveryFailure {
  /** Worth trying again: the service or the network failed, not the message. */
  transient: boolean;
  retryAfterMs?: number;
  reason: string;
}

export interface Outbox {
  /** Each transport knows its own failures (Slack's error codes, a 429's Retry-After); the reporter does not. */
  classify(err: unknown): DeliveryFailure;
  /** `paced`: the caller already waited for a slot from `reserve`, so the call goes at once. */
  post(origin: Origin, msg: Msg, opts?: { threadTs?: string; paced?: boolean }): Promise<PostedRef>;
  update(ref: PostedRef, msg: Msg, opts?: { paced?: boolean }): Promise<void>;
  /**
   * Reserves the next call of this kind in Slack's rate budget (shared by every job, and every worker process):
   * the caller makes it after `waitMs`, with `paced: true`. Reserving first lets a sender keep merging what it has
   * to say while it waits, and send only the latest. `progress` (a card update while the job runs) reserves only
   * a slot free right now with room left for what matters more (a card's outcome); otherwise nothing is reserved
   * and `waitMs` says when to ask again. Absent: the transport has no limits.
   */
  reserve?(method: 'chat.postMessage' | 'chat.update', channel: string, opts?: { progress?: boolean }): Promise<{ reserved: boolean; waitMs: number }>;
  /** Long output as a file (a snippet in Slack), so nothing has to be cut to fit a message. */
  upload(origin: Origin, file: { threadTs?: string; filename: string; title: string; content: string }): Promise<void>;
  /** A link to a posted message, for history; undefined when the transport has none. */
  permalink(ref: PostedRef): Promise<string | undefined>;
}
