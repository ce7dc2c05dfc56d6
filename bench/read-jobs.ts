// Read commands (`/engramia health ENV`) sent as Slack would, and their answers found in the fake Slack.
import type { Call } from '../test/world/fake-slack.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { until } from './util.js';
import { ALICE, OPS_CHANNEL, type BenchWorld } from './world.js';

export interface SentCommand {
  env: string;
  jobId: string;
  sentAt: number;
  ackMs: number;
}

/** Sends `/engramia health ENV` (from `channel`, default the ops channel) to the bot's request URL; returns the queued job's id from the answer. */
export async function sendHealth(w: BenchWorld, botUrl: string, env: string, channel = OPS_CHANNEL): Promise<SentCommand> {
  const sentAt = Date.now();
  const ack = await sendSlashCommand(`${botUrl}/slack/events`, w.signingSecret, {
    text: `health ${env}`,
    user_id: ALICE,
    channel_id: channel,
    response_url: w.slack.responseUrl({ channel, user: ALICE }),
  });
  const text = typeof ack.body === 'object' ? String(ack.body?.text ?? '') : ack.text;
  const jobId = /\(job ([^)\s]+)\)/.exec(text)?.[1];
  if (ack.status !== 200 || !jobId) throw new Error(`bench: \`health ${env}\` was not accepted: HTTP ${ack.status} ${ack.text.slice(0, 300)}`);
  return { env, jobId, sentAt, ackMs: ack.elapsedMs };
}

/** The answers posted in the channel, keyed by the job id in their footer (job `ID`). */
export function answers(w: BenchWorld): Map<string, Call[]> {
  const out = new Map<string, Call[]>();
  for (const c of w.slack.calls) {
    if (c.method !== 'chat.postMessage' || c.status !== 200 || c.response?.ok !== true || c.args.thread_ts) continue;
    const m = /job `([^`]+)`/.exec(JSON.stringify(c.args.blocks ?? []));
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push(c);
    out.set(m[1]!, list);
  }
  return out;
}

export interface Answered extends SentCommand {
  answeredAt: number;
  /** The answer's fallback text, e.g. "env01: healthy, version 0.6.0". */
  text: string;
  /** How many answers carry this job id (1 expected). */
  copies: number;
}

/** Waits until every sent command has its answer in the channel; throws if one reports anything but healthy. */
export async function waitForAnswers(w: BenchWorld, sent: SentCommand[], timeoutMs = 120_000): Promise<Answered[]> {
  const found = await until(
    () => {
      const a = answers(w);
      return sent.every((s) => a.has(s.jobId)) ? a : undefined;
    },
    `${sent.length} health answers`,
    timeoutMs,
    5,
  );
  return sent.map((s) => {
    const calls = found.get(s.jobId)!;
    const text = String(calls[0]!.args.text ?? '');
    if (!text.startsWith(`${s.env}: healthy`)) throw new Error(`bench: \`health ${s.env}\` answered "${text.slice(0, 200)}"`);
    return { ...s, answeredAt: calls[0]!.at, text, copies: calls.length };
  });
}
