import { asChatOpsError } from '../errors.js';
import { describeError } from '../render/errors.js';
import { code, esc } from '../render/model.js';
import * as cmd from '../runbooks/commands.js';
import { gateStatus, openGate } from '../runbooks/gates.js';
import type { StepContext, StepDef } from '../runbooks/kernel/types.js';
import type { StepRecord } from '../runbooks/types.js';

/** What to do with a step that was interrupted: its worker died, or its SSH connection dropped. */
export type Recovery =
  | { kind: 'rerun'; note: string }
  | { kind: 'settled'; status: 'done' | 'skipped'; note: string }
  | { kind: 'wait'; until: number; gateId: string }
  | { kind: 'abort'; reason: string; cancelled: boolean };

function errText(err: unknown): string {
  return describeError(asChatOpsError(err)).title.replace(/[*`]/g, '');
}

/**
 * Settles an interrupted step from the host's own state, never by guessing. A command left
 * running is stopped (or, for a migration, waited for); then the step says whether it already
 * took effect. A step that is not safe to repeat and whose outcome the host cannot tell becomes
 * a `step.retry` / `step.abort` (/ `step.skip`) question with everything that is known.
 */
export async function recoverStep(ctx: StepContext, step: StepDef, rec: StepRecord, cause: string): Promise<Recovery> {
  if (rec.gateId) return answered(ctx, rec);

  const facts: string[] = [`Interrupted: ${cause}.`];
  let hostReadable = rec.remotePid === undefined || (await orphanGroup(ctx, step, rec, facts));

  if (step.runsInContainer && hostReadable) {
    const inside = await waitInContainer(ctx, step.runsInContainer);
    facts.push(inside.fact);
    // Settling now would read a database the migration is still changing.
    if (inside.kind !== 'none' && inside.kind !== 'ended') hostReadable = false;
  }

  if (step.settle && hostReadable) {
    try {
      const s = await step.settle(ctx);
      if (s.status === 'done') return { kind: 'settled', status: 'done', note: `not run again: ${s.note}. ${facts.slice(1).join(' ')}`.trim() };
      facts.push(`The host shows: ${s.note}.`);
      if (s.status === 'not-run') return { kind: 'rerun', note: facts.join(' ') };
    } catch (err) {
      hostReadable = false;
      facts.push(`The host could not be read: ${errText(err)}.`);
    }
  }

  if (step.safeToRepeat) return { kind: 'rerun', note: facts.join(' ') };

  const gate = await openGate(ctx, {
    id: `step-${step.id}-${rec.attempts ?? 1}`,
    kind: 'step',
    go: 'step.retry',
    noGo: 'step.abort',
    ...(step.skippable ? { skip: 'step.skip' } : {}),
    question: `"${rec.title}" was interrupted and its outcome is unknown. Run it again?`,
    plan: [step.id, String(rec.attempts ?? 1)],
    detail: [
      ...facts.map(esc),
      `This step is not safe to repeat blindly, so the bot does not guess.${rec.command ? ` It ran:\n${code(rec.command.split('\n').pop() ?? '')}` : ''}`,
      `*Retry* runs it again; *Abort* stops the job here and reports the host's state${step.skippable ? '; *Skip* continues without it (verification still checks the result)' : ''}. With no answer the job aborts.`,
    ],
  });
  rec.gateId = gate.id;
  await ctx.save();
  return { kind: 'wait', until: Date.parse(gate.expiresAt), gateId: gate.id };
}

async function answered(ctx: StepContext, rec: StepRecord): Promise<Recovery> {
  const gate = ctx.state.gates[rec.gateId!];
  if (!gate) {
    rec.gateId = undefined;
    return { kind: 'abort', reason: 'the question about this step was lost', cancelled: false };
  }
  const st = await gateStatus(ctx, gate);
  if (st.kind === 'pending') return { kind: 'wait', until: st.until, gateId: gate.id };
  rec.gateId = undefined;
  if (st.kind === 'expired') return { kind: 'abort', reason: `nobody decided within ${Math.round(ctx.gateTimeoutMs / 60_000)} min whether to retry this interrupted step`, cancelled: false };
  const by = st.decision.by ?? 'someone';
  if (st.decision.choice === 'go') return { kind: 'rerun', note: `retried by ${by}` };
  if (st.decision.choice === 'skip') return { kind: 'settled', status: 'skipped', note: `outcome unknown; skipped by ${by}` };
  return { kind: 'abort', reason: `aborted by ${by} after an interruption left its outcome unknown`, cancelled: true };
}

type Inside = { kind: 'none' | 'ended' | 'still' | 'unreadable'; fact: string };

const IN_CONTAINER_POLL_MS = 1000;

/**
 * Looks inside engramia-api's containers for `program` left running by a dead client, and waits for
 * it to end: never kills it (a migration stopped halfway is worse than a slow one), never settles or
 * repeats the step while it runs.
 */
async function waitInContainer(ctx: StepContext, program: string): Promise<Inside> {
  const budget = Math.max(ctx.env.timeouts.command, ctx.env.timeouts.migrate) * 1000;
  const deadline = Date.now() + budget;
  let seen: string[] = [];
  for (;;) {
    let pids: string[];
    try {
      pids = await programPids(ctx, program);
    } catch (err) {
      return { kind: 'unreadable', fact: `Whether \`${program}\` still runs inside ${cmd.API} could not be read: ${errText(err)}.` };
    }
    if (pids.length === 0) {
      return seen.length === 0
        ? { kind: 'none', fact: `No \`${program}\` runs inside ${cmd.API}.` }
        : { kind: 'ended', fact: `\`${program}\` was still running inside ${cmd.API} (pid ${seen.join(', ')}) after its client had gone; the bot waited for it to end.` };
    }
    if (seen.length === 0) ctx.log.info({ program, pids }, 'still runs inside the container after its client died: waiting for it to end');
    seen = pids;
    if (Date.now() >= deadline) {
      return { kind: 'still', fact: `\`${program}\` still runs inside ${cmd.API} (pid ${pids.join(', ')}) after ${Math.round(budget / 1000)} s; the bot does not kill it and does not start another.` };
    }
    await new Promise((r) => setTimeout(r, IN_CONTAINER_POLL_MS));
  }
}

/** The host pids of `program` in the service's containers, from `docker top` (its CMD column is last). */
async function programPids(ctx: StepContext, program: string): Promise<string[]> {
  const res = await ctx.ssh.exec(cmd.serviceProcesses(ctx.env, cmd.API), { timeoutMs: ctx.env.timeouts.command * 1000 });
  if (res.exitCode !== 0) {
    const said = res.stderr.trim().split('\n').filter(Boolean).at(-1);
    throw new Error(`docker top exited with ${res.exitCode ?? res.signal ?? '?'}${said ? ` (${said})` : ''}`);
  }
  return parseTopPids(res.stdout.toString('utf8'), program);
}

/** `docker top` prints `UID PID PPID C STIME TTY TIME CMD` rows (one header per container). */
export function parseTopPids(output: string, program: string): string[] {
  const word = new RegExp(`(^|[\\s/])${program.replace(/[^\w-]/g, '')}(\\s|$)`);
  return output
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((cols) => cols.length >= 8 && cols[0] !== 'UID' && word.test(cols.slice(7).join(' ')))
    .map((cols) => cols[1]!);
}

/**
 * A command the interrupted step left running on the host: stopped (a step safe to repeat) or waited
 * for (a migration). Says what it found in `facts`; false when the host could not be asked.
 */
async function orphanGroup(ctx: StepContext, step: StepDef, rec: StepRecord, facts: string[]): Promise<boolean> {
  const pid = rec.remotePid!;
  const policy = step.orphan ?? (step.safeToRepeat ? 'stop' : 'wait');
  try {
    if (await ctx.ssh.groupAlive(pid)) {
      if (policy === 'wait') {
        const budget = Math.max(ctx.env.timeouts.command, ctx.env.timeouts.migrate) * 1000;
        ctx.log.info({ step: step.id, pid }, 'command of the interrupted step still runs on the host: waiting for it to end');
        const gone = await ctx.ssh.waitGroupGone(pid, budget);
        facts.push(gone ? `Its command (process group ${pid}) was still running on the host; the bot waited for it to end.` : `Its command (process group ${pid}) was still running after ${Math.round(budget / 1000)} s and was stopped.`);
        if (!gone) await ctx.ssh.stopGroup(pid);
      } else {
        const stopped = await ctx.ssh.stopGroup(pid);
        facts.push(stopped ? `Its command (process group ${pid}) was still running on the host and was stopped.` : `Its command (process group ${pid}) may still run on the host: stopping it failed.`);
      }
    } else {
      facts.push(`Its command (process group ${pid}) no longer runs on the host.`);
    }
    rec.remotePid = undefined;
  } catch (err) {
    facts.push(`Whether its command still runs could not be checked: ${errText(err)}.`);
    return false;
  }
  return true;
}
