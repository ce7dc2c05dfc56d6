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

export type JobData = ReadJobData | import('../runbooks/deploy.js').DeployData;

export interface PostedRef {
  channel: string;
  ts: string;
}

/**
 * How jobs talk to people. Slack and the console implement it; jobs never
 * know which one they use.
 */
export interface Outbox {
  post(origin: Origin, msg: Msg, opts?: { threadTs?: string }): Promise<PostedRef>;
  update(ref: PostedRef, msg: Msg): Promise<void>;
  /** Long output as a file (a snippet in Slack), so nothing has to be cut to fit a message. */
  upload(origin: Origin, file: { threadTs?: string; filename: string; title: string; content: string }): Promise<void>;
  /** A link to a posted message, for history; undefined when the transport has none. */
  permalink(ref: PostedRef): Promise<string | undefined>;
}
