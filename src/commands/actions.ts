import type { Config } from '../config/load.js';
import { asChatOpsError } from '../errors.js';
import { startRunbook } from './handle.js';
import type { Producer } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { DeployData } from '../runbooks/deploy.js';
import { decidedGateMsg, decodeGateValue } from '../render/deploy.js';
import { describeError } from '../render/errors.js';
import { code, esc, mention, type Msg } from '../render/model.js';

export interface ActionRequest {
  actionId: string;
  value: string;
  user: string;
  channel: string;
}

export interface ActionDeps {
  config: Config;
  producer: Pick<Producer, 'getJob' | 'store' | 'enqueue' | 'ready'>;
  log: Logger;
  metrics?: Metrics;
}

export interface ActionResult {
  /** Shown only to the person who pressed. */
  ephemeral?: Msg;
  /** Replaces the gate message: the decision, with the buttons gone. */
  replace?: Msg;
}

function say(text: string): ActionResult {
  return { ephemeral: { summary: text.replace(/[*`]/g, ''), parts: [{ type: 'section', text }] } };
}

function when(iso: string): string {
  return `${iso.replace('T', ' ').slice(0, 16)} UTC`;
}

/**
 * Every button comes through here, whatever the transport. A press is checked
 * like a command (role, four-eyes, plan, expiry) and decided once, atomically.
 */
export async function handleAction(req: ActionRequest, deps: ActionDeps): Promise<ActionResult> {
  const log = deps.log.child({ user: req.user, action: req.actionId });
  try {
    const v = decodeGateValue(req.value);
    if (!v) return say('⚠️ This button is not one the bot understands (it may come from an older version). Nothing was done.');
    const job = await deps.producer.getJob(v.j);
    const data = job?.data as DeployData | undefined;
    const gate = data?.state?.gates[v.g];
    if (!job || !data || !gate) return say(`⚠️ Job ${code(v.j)} or its question no longer exists. Nothing was done.`);
    if (req.actionId !== gate.go && req.actionId !== gate.noGo) return say('⚠️ That button does not belong to this question. Nothing was done.');

    const { approvers, admins } = deps.config.access;
    if (!approvers.includes(req.user) && !admins.includes(req.user)) {
      log.info('gate press refused: not an approver');
      return say(`🚫 Only approvers (access.approvers) and admins may decide this. Nothing was done.`);
    }
    const env = deps.config.environments[data.env];
    if ((env?.fourEyes ?? true) && req.user === data.origin.user) {
      log.info('gate press refused: four-eyes');
      return say(`🚫 You requested this job; on ${esc(data.env)} (four-eyes) someone else must decide. Nothing was done.`);
    }
    if (v.h !== gate.planHash) return say('⚠️ The plan changed since these buttons were posted, so this press was refused. Use the newest buttons in the thread.');

    const existing = gate.decision ?? (await deps.producer.store.readGate(v.j, v.g));
    if (existing) return say(already(existing));
    if (Date.now() >= Date.parse(gate.expiresAt)) return say(`⌛ This question expired at ${when(gate.expiresAt)}; the job took the safe branch. Nothing was done.`);

    const decision = { choice: req.actionId === gate.go ? ('go' as const) : ('no-go' as const), by: req.user, at: new Date().toISOString() };
    const res = await deps.producer.store.decideGate(v.j, v.g, decision);
    if (!res.ok) return say(already(res.existing));
    log.info({ jobId: v.j, gate: v.g, choice: decision.choice }, 'gate decided');

    if (gate.kind === 'rollback') {
      if (decision.choice !== 'go') return { replace: decidedGateMsg({ ...gate, decision }, 'Dismissed: no rollback.') };
      const target = data.state?.fromVersion ?? data.state?.pinnedBefore;
      if (!target) return say('⚠️ The failed deploy recorded no previous version, so there is nothing to roll back to. Name one: `/engramia rollback VERSION`.');
      try {
        // The person who approved is the one who asked for the rollback: its own gates need someone else.
        const rollbackId = await startRunbook({ kind: 'rollback', version: target, env: data.env, dryRun: false, origin: { ...data.origin, user: req.user } }, deps.producer);
        return { replace: decidedGateMsg({ ...gate, decision }, `Rollback to ${target} started (job ${rollbackId}); its progress is posted in the channel.`) };
      } catch (err) {
        return { replace: decidedGateMsg({ ...gate, decision }, `Approved, but the rollback could not start: ${describeError(asChatOpsError(err)).title.replace(/[*`]/g, '')}`) };
      }
    }

    // Wake the parked job now rather than at the gate's expiry.
    if ((await job.getState()) === 'delayed') await job.promote().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'promote failed'));
    const outcome =
      gate.kind === 'maintenance'
        ? decision.choice === 'go'
          ? 'The deploy continues with maintenance on.'
          : 'The deploy continues without maintenance.'
        : decision.choice === 'go'
          ? 'Approved.'
          : 'Dismissed.';
    return { replace: decidedGateMsg({ ...gate, decision }, outcome) };
  } catch (err) {
    const error = asChatOpsError(err);
    log.warn({ code: error.code, err: error.message }, 'gate press failed');
    return say(`⚠️ ${describeError(error).title} Your press was not recorded; try again.`);
  }
}

function already(d: { choice: string; by?: string; at: string }): string {
  if (d.choice === 'expired') return `⌛ This question already expired at ${when(d.at)}. Nothing was done.`;
  return `☑️ Already decided (${d.choice === 'go' ? 'yes' : 'no'}) by ${d.by ? mention(d.by) : 'someone'} at ${when(d.at)}. Nothing more was done.`;
}
