import { probeSilence } from '../engramia/client.js';
import type { ContainerState } from '../engramia/compose.js';
import { ErrorCode, type ChatOpsError } from '../errors.js';
import type { DiagnoseFacts, EnvShape } from './facts.js';

/**
 * Matches what `diagnose` gathered against the runbook's "Troubleshooting common issues".
 * Pure: facts in, findings out; what an operator reads for each finding is decided in
 * src/render/diagnose.ts. A problem that fits no row of the runbook is reported as
 * `unclassified` with its evidence, never with a guessed cause.
 */

export type FindingId =
  // "Container exits immediately after start": the runbook's symptom table, matched in the log.
  | 'database-url-not-set'
  | 'connection-refused'
  | 'alembic-command-error'
  | 'stripe-module-missing'
  // "Deep health returns storage: error"
  | 'pgvector-down'
  | 'storage-error'
  // "Deep health returns migration: error"
  | 'migrations-behind'
  // "Deep health returns stripe: error", and a key that could never work
  | 'stripe-error'
  | 'stripe-key-format'
  // "API returns 503 for all endpoints"
  | 'maintenance-on'
  | 'maintenance-pending'
  // "Rate limit errors (429) under load"
  | 'rate-limited'
  // Fits no row of the runbook: evidence only.
  | 'unclassified';

/** A fix the bot runs itself, offered as a button on the finding. */
export type FixAction = 'maintenance_off' | 'migrate_upgrade';

export interface Finding {
  id: FindingId;
  severity: 'error' | 'warning';
  /** Facts the renderer words the finding with (revisions, states, shapes); never secrets. */
  details: Record<string, string | number | boolean | null>;
  /** Raw lines that show the problem (log lines, command output), already scrubbed. */
  evidence: string[];
  /** A failure that is itself the evidence (SSH, an API probe); rendered by src/render/errors.ts. */
  error?: ChatOpsError;
  fix?: FixAction;
}

/** The log lines the runbook's table names, as the API prints them. */
export const LOG_SYMPTOMS: ReadonlyArray<{ id: FindingId; pattern: RegExp }> = [
  { id: 'database-url-not-set', pattern: /ENGRAMIA_DATABASE_URL\b.*\b(?:not set|is not set|is required|missing)\b/i },
  { id: 'connection-refused', pattern: /connection refused/i },
  { id: 'alembic-command-error', pattern: /alembic\.util(?:\.exc)?\.CommandError/ },
  // Python prints `ModuleNotFoundError: No module named 'stripe'`; the runbook shortens it.
  { id: 'stripe-module-missing', pattern: /ModuleNotFoundError:?.*\bstripe\b/ },
];

/** An access-log line answered 429, or the API's own rate-limit error. */
const RATE_LIMITED_LINE = /"\s*[A-Z]+ [^"]*" 429\b|\bRATE_LIMITED\b|Rate limit exceeded/;

/** Lines that show something failed, for an error the runbook does not list. */
const ERROR_LINE = /Traceback \(most recent call last\)|\b(?:ERROR|CRITICAL|FATAL)\b|"level":\s*"(?:ERROR|CRITICAL)"|^\w+(?:\.\w+)*(?:Error|Exception):/;

const MAX_EVIDENCE = 8;
/** Enough of a crashed container's log to see how it ended. */
const CRASH_TAIL = 20;

function unique(lines: readonly string[], max = MAX_EVIDENCE): string[] {
  return [...new Set(lines.map((l) => l.trimEnd()).filter((l) => l.trim() !== ''))].slice(-max);
}

function container(facts: DiagnoseFacts, service: string): ContainerState | undefined {
  return facts.host.kind === 'ok' ? facts.host.value.containers.find((c) => c.service === service) : undefined;
}

function shape(facts: DiagnoseFacts, name: string): EnvShape | null {
  return facts.envFile.kind === 'ok' ? (facts.envFile.value[name] ?? null) : null;
}

function exitCodeOf(c: ContainerState | undefined): number | null {
  const m = c ? /Exited \((\d+)\)/.exec(c.status) : null;
  return m ? Number(m[1]) : null;
}

function tailLines(output: string, n = 6): string[] {
  return output.split('\n').filter((l) => l.trim() !== '').slice(-n);
}

export function matchFindings(facts: DiagnoseFacts): Finding[] {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const logs = facts.logs.kind === 'ok' ? facts.logs.value : [];
  const hostKnown = facts.host.kind === 'ok';
  const api = container(facts, 'engramia-api');
  // `running` with neither probe answered: crash-looping (caught between restarts) or not listening yet.
  const silentWhileUp = hostKnown && api?.state === 'running' && probeSilence(facts.version) !== undefined && probeSilence(facts.deep) !== undefined;
  const apiDown = hostKnown && (api?.state !== 'running' || silentWhileUp);
  const pg = container(facts, 'pgvector');
  const pgDown = hostKnown && pg?.state !== 'running';
  // A symptom in the log of a container that runs now may be history; one that stopped it is the problem.
  const logSeverity: Finding['severity'] = apiDown ? 'error' : 'warning';
  const apiFacts = { apiState: silentWhileUp ? `running, but its API does not answer (${probeSilence(facts.version)})` : (api?.state ?? (hostKnown ? 'missing' : null)), apiExitCode: exitCodeOf(api) };

  if (facts.host.kind === 'failed') {
    add({ id: 'unclassified', severity: 'error', details: { what: 'host' }, evidence: [], error: facts.host.error });
  }
  if (facts.logs.kind === 'failed' && facts.host.kind !== 'failed') {
    add({ id: 'unclassified', severity: 'warning', details: { what: 'logs' }, evidence: [], error: facts.logs.error });
  }

  // "Container exits immediately after start": the runbook's symptom table.
  const matched = new Set<string>();
  for (const s of LOG_SYMPTOMS) {
    const lines = logs.filter((l) => s.pattern.test(l));
    if (lines.length === 0) continue;
    lines.forEach((l) => matched.add(l));
    const details: Finding['details'] = { ...apiFacts, count: lines.length };
    const evidence = unique(lines);
    if (s.id === 'database-url-not-set') details.databaseUrl = shape(facts, 'ENGRAMIA_DATABASE_URL');
    if (s.id === 'connection-refused') Object.assign(details, { pgState: pg?.state ?? null, pgHealth: pg?.health || null, pgAnswers: facts.pgVersion.kind === 'ok' ? facts.pgVersion.value.exitCode === 0 : null });
    if (s.id === 'alembic-command-error' && facts.alembic.kind === 'ran') {
      const cur = facts.alembic.current;
      if (cur.kind === 'ok') {
        details.current = cur.value.exitCode === 0 ? (cur.value.revision ?? 'base') : null;
        evidence.push(`$ ${cur.value.command}`, ...tailLines(cur.value.output));
      }
      if (facts.alembic.head.kind === 'ok' && facts.alembic.head.value.exitCode === 0) details.head = facts.alembic.head.value.revision;
    }
    if (s.id === 'stripe-module-missing') details.tag = api?.tag ?? null;
    add({ id: s.id, severity: logSeverity, details, evidence });
  }

  if (apiDown && !findings.some((f) => LOG_SYMPTOMS.some((s) => s.id === f.id))) {
    // It stopped, and not for a reason the runbook lists: the log says what happened, the bot does not guess.
    add({ id: 'unclassified', severity: 'error', details: { what: 'api-down', ...apiFacts, status: api?.status ?? null }, evidence: logs.slice(-CRASH_TAIL) });
  } else if (!apiDown) {
    const errors = logs.filter((l) => ERROR_LINE.test(l) && !matched.has(l) && !RATE_LIMITED_LINE.test(l));
    if (errors.length > 0) add({ id: 'unclassified', severity: 'warning', details: { what: 'log-errors', count: errors.length }, evidence: unique(errors) });
  }

  // "Deep health returns storage: error": the pgvector container and a manual connection.
  const deep = facts.deep.kind === 'ok' ? facts.deep.value : undefined;
  const pgEvidence = facts.pgVersion.kind === 'ok' ? [`$ ${facts.pgVersion.value.command}`, ...tailLines(facts.pgVersion.value.output, 4)] : [];
  const pgAnswers = facts.pgVersion.kind === 'ok' && facts.pgVersion.value.exitCode === 0;
  if (pgDown) {
    const storageError = deep?.checks.storage?.error;
    add({ id: 'pgvector-down', severity: 'error', details: { pgState: pg?.state ?? 'missing', status: pg?.status ?? null, storage: deep?.checks.storage?.status ?? null }, evidence: storageError ? [`storage: ${storageError}`] : [] });
  } else if (hostKnown && (pg?.health === 'unhealthy' || (facts.pgVersion.kind === 'ok' && !pgAnswers) || deep?.checks.storage?.status === 'error')) {
    const storageError = deep?.checks.storage?.error;
    add({
      id: 'storage-error',
      severity: 'error',
      details: { pgHealth: pg?.health || null, pgAnswers: facts.pgVersion.kind === 'ok' ? pgAnswers : null, storage: deep?.checks.storage?.status ?? null },
      evidence: [...(storageError ? [`storage: ${storageError}`] : []), ...pgEvidence],
    });
  }

  // "Deep health returns migration: error": the database behind the code; alembic says by how much.
  const alembic = facts.alembic.kind === 'ran' ? facts.alembic : undefined;
  const current = alembic?.current.kind === 'ok' && alembic.current.value.exitCode === 0 ? alembic.current.value.revision : undefined;
  const head = alembic?.head.kind === 'ok' && alembic.head.value.exitCode === 0 ? alembic.head.value.revision : undefined;
  const migrationCheck = deep?.checks.migration as (Record<string, unknown> & { status: string; error?: string | null }) | undefined;
  const behind = current !== undefined && head !== undefined && head !== null && current !== head;
  // With the database unreachable the migration check fails too; that is the storage problem, not a schema one.
  const schemaError = migrationCheck?.status === 'error' && !pgDown && (current !== undefined || typeof migrationCheck.current_revision === 'string');
  if (migrationCheck?.status === 'error' && !schemaError) {
    const home = findings.find((f) => f.id === 'pgvector-down' || f.id === 'storage-error');
    if (home) home.evidence.push(`migration: ${migrationCheck.error ?? 'error'}`);
    else add({ id: 'unclassified', severity: 'warning', details: { what: 'check', check: 'migration' }, evidence: [`migration: ${migrationCheck.error ?? 'error'}`] });
  }
  if (behind || schemaError) {
    const known = current !== undefined && head !== undefined;
    add({
      id: 'migrations-behind',
      severity: 'error',
      details: {
        current: current === undefined ? null : (current ?? 'base'),
        head: head ?? null,
        reportedCurrent: typeof migrationCheck?.current_revision === 'string' ? migrationCheck.current_revision : null,
        reportedExpected: typeof migrationCheck?.expected_revision === 'string' ? migrationCheck.expected_revision : null,
        tag: alembic?.tag ?? null,
        behind,
        deepError: migrationCheck?.status === 'error',
        // Running `upgrade head` is the fix only when alembic itself says the database is behind its head.
        agree: known,
      },
      evidence: migrationCheck?.error ? [`migration: ${migrationCheck.error}`] : [],
      ...(behind && !apiDown ? { fix: 'migrate_upgrade' as const } : {}),
    });
  } else if (alembic && (alembic.current.kind !== 'ok' || alembic.current.value.exitCode !== 0) && !pgDown && !findings.some((f) => f.id === 'alembic-command-error')) {
    const cur = alembic.current;
    add({
      id: 'unclassified',
      severity: 'warning',
      details: { what: 'alembic' },
      evidence: cur.kind === 'ok' ? [`$ ${cur.value.command}`, ...tailLines(cur.value.output)] : [],
      ...(cur.kind === 'failed' ? { error: cur.error } : {}),
    });
  }

  // "Deep health returns stripe: error": only the key's prefix is known, never the key.
  const stripeKey = shape(facts, 'STRIPE_SECRET_KEY');
  const stripeCheck = deep?.checks.stripe;
  if (stripeCheck?.status === 'error') {
    add({ id: 'stripe-error', severity: 'warning', details: { key: stripeKey }, evidence: stripeCheck.error ? [`stripe: ${stripeCheck.error}`] : [] });
  } else if (stripeKey === 'set' || stripeKey === 'empty') {
    add({ id: 'stripe-key-format', severity: 'warning', details: { key: stripeKey }, evidence: [] });
  }

  // Deep-health checks the runbook has no section for.
  for (const [name, check] of Object.entries(deep?.checks ?? {})) {
    if (check.status !== 'error' || ['storage', 'migration', 'stripe'].includes(name)) continue;
    add({ id: 'unclassified', severity: 'warning', details: { what: 'check', check: name }, evidence: [`${name}: ${check.error ?? 'error'}`] });
  }

  // "API returns 503 for all endpoints": maintenance, in the container or waiting in .env.
  const inEnvFile = facts.host.kind === 'ok' ? facts.host.value.maintenanceInEnvFile : null;
  if (facts.version.kind === 'maintenance') {
    add({ id: 'maintenance-on', severity: 'error', details: { inEnvFile, retryAfter: facts.version.retryAfter ?? null }, evidence: [], fix: 'maintenance_off' });
  } else if (inEnvFile) {
    add({ id: 'maintenance-pending', severity: 'warning', details: { apiState: apiFacts.apiState }, evidence: [], fix: 'maintenance_off' });
  }

  // "Rate limit errors (429) under load": the bot's own probes, or requests in the access log.
  const limitedProbes = [facts.version, facts.deep].filter((p): p is { kind: 'failed'; error: ChatOpsError; ms: number } => p.kind === 'failed' && p.error.code === ErrorCode.ApiRateLimited);
  const limitedLines = logs.filter((l) => RATE_LIMITED_LINE.test(l));
  if (limitedProbes.length > 0 || limitedLines.length > 0) {
    const retry = limitedProbes[0]?.error.details.retryAfter;
    add({
      id: 'rate-limited',
      severity: 'warning',
      details: { probes: limitedProbes.length, lines: limitedLines.length, retryAfter: typeof retry === 'string' ? retry : null },
      evidence: unique(limitedLines),
    });
  }

  // An API probe that failed for a reason none of the above explains (not a crash, not a 429).
  if (!apiDown) {
    for (const [label, probe] of [['/v1/health/deep', facts.deep], ['/v1/version', facts.version]] as const) {
      if (probe.kind === 'failed' && probe.error.code !== ErrorCode.ApiRateLimited) {
        add({ id: 'unclassified', severity: 'error', details: { what: 'probe', probe: label }, evidence: [], error: probe.error });
      }
    }
  }

  // Other services of the compose project that are not running.
  if (facts.host.kind === 'ok') {
    for (const c of facts.host.value.containers) {
      if (c.state === 'running' || c.service === 'engramia-api' || c.service === 'pgvector' || c.name.includes('-run-')) continue;
      add({ id: 'unclassified', severity: 'warning', details: { what: 'container', service: c.service, state: c.state, status: c.status }, evidence: [] });
    }
  }

  return [...findings.filter((f) => f.severity === 'error'), ...findings.filter((f) => f.severity === 'warning')];
}
