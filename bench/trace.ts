// In-process timestamps for the bot's side of a benchmark round, without touching src/: the
// bench wraps a few prototype methods of the same module instances the bot runs (tsx loads each
// module once). A wrapper costs two clock reads; nothing is logged while a round runs.
import { Job } from 'bullmq';
import { NodeSSH } from 'node-ssh';
import { EngramiaApi } from '../src/engramia/client.js';
import { JobReporter } from '../src/jobs/reporter.js';
import { OpsStore } from '../src/jobs/store.js';
import { SlackOutbox } from '../src/slack/outbox.js';
import { SshExecutor } from '../src/ssh/executor.js';
import type { RemoteCommand } from '../src/ssh/quote.js';

export interface Span {
  kind: string;
  label: string;
  /** Epoch ms, sub-millisecond. */
  start: number;
  end: number;
  ok: boolean;
}

/** Epoch milliseconds with sub-millisecond resolution. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

class Tracer {
  spans: Span[] = [];
  add(span: Span): void {
    this.spans.push(span);
  }
  reset(): void {
    this.spans = [];
  }
}

export const tracer = new Tracer();

/** A short, stable name for a host command, shared by the bot's trace and the baseline's markers. */
export function commandLabel(cmd: RemoteCommand): string {
  const tag = Object.entries(cmd.env ?? {})
    .map(([k, v]) => `${k}=${v} `)
    .join('');
  const a = cmd.argv;
  if (a[0] === 'docker' && a[1] === 'compose') {
    const rest = a[2] === '-f' ? a.slice(4) : a.slice(2);
    return `${tag}compose ${rest.join(' ')}`;
  }
  if (a[0] === 'sh' && a[1] === '-c') return `${tag}sh -c <${a[3] ?? 'script'}> ${a.slice(4).join(' ')}`;
  if (a[0] === 'grep') return `grep ${a.at(-1) ?? ''}`;
  return `${tag}${a.join(' ')}`;
}

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

function wrap(proto: object, name: string, kind: string, label: (self: unknown, args: unknown[]) => string = () => name): void {
  const target = proto as Record<string, unknown>;
  const orig = target[name] as (AnyFn & { __benchWrapped?: boolean }) | undefined;
  if (typeof orig !== 'function') throw new Error(`bench trace: ${kind}: no method ${name} to wrap`);
  if (orig.__benchWrapped) return;
  const wrapped: AnyFn & { __benchWrapped?: boolean } = function (this: unknown, ...args: unknown[]) {
    const start = now();
    let lbl = name;
    try {
      lbl = label(this, args);
    } catch {
      // a label is never worth failing the call for
    }
    const done = (ok: boolean) => tracer.add({ kind, label: lbl, start, end: now(), ok });
    let result: unknown;
    try {
      result = orig.apply(this, args);
    } catch (err) {
      done(false);
      throw err;
    }
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      return (result as Promise<unknown>).then(
        (v) => {
          done(true);
          return v;
        },
        (err: unknown) => {
          done(false);
          throw err;
        },
      );
    }
    done(true);
    return result;
  };
  wrapped.__benchWrapped = true;
  target[name] = wrapped;
}

let installed = false;

/** Wraps SSH (connect, exec), Slack (post, update, flush), Redis (job data, locks, history) and the API probes. */
export function installTracing(): void {
  if (installed) return;
  installed = true;
  wrap(NodeSSH.prototype, 'connect', 'ssh.connect', () => 'handshake + auth');
  wrap(SshExecutor.prototype, 'exec', 'ssh.exec', (_self, args) => commandLabel(args[0] as RemoteCommand));
  wrap(SlackOutbox.prototype, 'post', 'slack.post', (_self, args) => ((args[2] as { threadTs?: string } | undefined)?.threadTs ? 'thread reply' : 'card'));
  wrap(SlackOutbox.prototype, 'update', 'slack.update', () => 'chat.update');
  wrap(JobReporter.prototype, 'start', 'reporter.start', () => 'post the card');
  wrap(JobReporter.prototype, 'flush', 'reporter.flush', () => 'flush');
  wrap(Job.prototype, 'updateData', 'redis', () => 'job.updateData (save)');
  for (const m of ['acquireLock', 'readLock', 'renewLock', 'releaseLock', 'pushHistory', 'readGate']) wrap(OpsStore.prototype, m, 'redis', () => `store.${m}`);
  for (const m of ['version', 'health', 'deepHealth']) wrap(EngramiaApi.prototype, m, 'http.api', () => m);
}
