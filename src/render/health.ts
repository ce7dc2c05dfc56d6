import { probeSilence, type DeepHealth, type Probe, type ShallowHealth, type VersionInfo } from '../engramia/client.js';
import type { HostState } from '../engramia/host.js';
import type { ChatOpsError } from '../errors.js';
import { errorParts } from './errors.js';
import { code, esc, mention, type Msg, type Part } from './model.js';

/** Everything one `health` or `version` run found, before any formatting. */
export interface HealthReport {
  env: string;
  apiBaseUrl: string;
  checkedAt: Date;
  requestedBy: string;
  /** Who or what asked, when it was not a person (the health watch); replaces "requested by". */
  trigger?: string;
  jobId: string;
  version: Probe<VersionInfo>;
  shallow?: Probe<ShallowHealth>;
  deep?: Probe<DeepHealth>;
  host: { kind: 'ok'; value: HostState; label: string } | { kind: 'failed'; error: ChatOpsError; label: string };
}

export type Overall = 'ok' | 'degraded' | 'error' | 'unknown';

export const DOT: Record<string, string> = { ok: '🟢', degraded: '🟡', error: '🔴', not_configured: '⚪', unknown: '⚫' };
export const WORD: Record<Overall, string> = { ok: 'healthy', degraded: 'degraded', error: 'error', unknown: 'unknown (no deep health answer)' };

export function overallOf(r: HealthReport): Overall {
  if (r.deep?.kind === 'ok') return r.deep.value.status;
  return r.deep === undefined ? (r.version.kind === 'failed' ? 'unknown' : 'ok') : 'unknown';
}

/** Maintenance as the API shows it (version 503) or as the host's .env asks for it. */
export function maintenanceOf(r: HealthReport): { running: boolean; inEnvFile: boolean | undefined } {
  return {
    running: r.version.kind === 'maintenance',
    inEnvFile: r.host.kind === 'ok' ? r.host.value.maintenanceInEnvFile : undefined,
  };
}

function ms(v: number | null | undefined): string {
  return typeof v === 'number' ? `${v.toFixed(1)} ms` : '—';
}

function duration(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number') return '—';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function checkLine(name: string, c: DeepHealth['checks'][string]): string {
  const status = c.status;
  const dot = DOT[status] ?? '⚫';
  if (status === 'not_configured') return `${dot} *${esc(name)}*  not configured`;
  const extra: string[] = [ms(c.latency_ms)];
  const rec = c as Record<string, unknown>;
  if (typeof rec.current_revision === 'string' || typeof rec.expected_revision === 'string') {
    extra.push(`revision ${code(String(rec.current_revision ?? '?'))} (expected ${code(String(rec.expected_revision ?? '?'))})`);
  }
  if (c.error) extra.push(code(c.error));
  return `${dot} *${esc(name)}*  ${esc(status)} · ${extra.join(' · ')}`;
}

function versionField(r: HealthReport): string {
  switch (r.version.kind) {
    case 'ok':
      return `*Version*\n${code(r.version.value.app_version)}`;
    case 'maintenance':
      return '*Version*\n_hidden: /v1/version answers 503 in maintenance_';
    case 'failed':
      return '*Version*\n_unknown_';
  }
}

function hostParts(r: HealthReport): Part[] {
  if (r.host.kind === 'failed') return [{ type: 'section', text: `*Host* ${code(r.host.label)}` }, ...errorParts(r.host.error, '⚠️')];
  const h = r.host.value;
  // `running` with no answer from the API: crash-looping between restarts, or not listening yet.
  const silent = probeSilence(r.version);
  const lines = h.containers.length === 0 ? ['_no containers_'] : h.containers.map((c) => {
    const mute = c.service === 'engramia-api' && c.state === 'running' && silent !== undefined;
    return `${c.state === 'running' && !mute ? '🟢' : '🔴'} ${code(c.service)} ${esc(c.state)}${c.tag ? ` · ${code(c.tag)}` : ''}${c.status ? ` · ${esc(c.status)}` : ''}${mute ? ` · its API does not answer (${esc(silent)})` : ''}`;
  });
  const pin = h.pinnedTag === null ? '_no tag pinned in .env_' : `pinned in .env: ${code(h.pinnedTag)}`;
  return [{ type: 'section', text: `*Host* ${code(r.host.label)} · ${pin}\n${lines.join('\n')}` }];
}

function maintenanceText(r: HealthReport): string {
  const m = maintenanceOf(r);
  if (m.running && m.inEnvFile === false) return '*Maintenance*\n🚧 on in the running container, but no longer in .env (re-create engramia-api to end it)';
  if (m.running) return '*Maintenance*\n🚧 on: every endpoint but /v1/health answers 503';
  if (m.inEnvFile) return '*Maintenance*\n⚠️ set in .env but not active (engramia-api not re-created)';
  return `*Maintenance*\noff${m.inEnvFile === undefined ? ' (host not checked)' : ''}`;
}

function footer(r: HealthReport): Part {
  return { type: 'context', items: [`Checked ${r.checkedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC · ${r.trigger ? esc(r.trigger) : `requested by ${mention(r.requestedBy)}`} · job ${code(r.jobId)}`] };
}

/** Shared with deploy verification, so operators learn one picture of health. */
export function healthMsg(r: HealthReport): Msg {
  const overall = overallOf(r);
  const parts: Part[] = [{ type: 'header', text: `${DOT[overall]} ${r.env}: ${WORD[overall]}` }];
  const deep = r.deep?.kind === 'ok' ? r.deep.value : undefined;
  parts.push({
    type: 'fields',
    items: [
      versionField(r),
      `*Uptime*\n${duration(deep?.uptime_seconds)}`,
      maintenanceText(r),
      `*API*\n${esc(r.apiBaseUrl)}${r.deep?.kind === 'ok' ? ` (deep: HTTP ${r.deep.httpStatus})` : ''}`,
    ],
  });
  if (deep) {
    const names = Object.keys(deep.checks);
    parts.push({ type: 'section', text: names.length === 0 ? '_The deep health answer listed no checks._' : names.map((n) => checkLine(n, deep.checks[n]!)).join('\n') });
  }
  for (const [label, probe] of [
    ['/v1/health/deep', r.deep],
    ['/v1/health', r.shallow],
    ['/v1/version', r.version],
  ] as const) {
    if (probe?.kind === 'failed') parts.push(...errorParts(probe.error, `⚠️ ${label}:`));
  }
  if (r.shallow?.kind === 'ok' && r.shallow.value.status !== 'ok') {
    parts.push({ type: 'section', text: `⚠️ Shallow health says ${code(r.shallow.value.status)}` });
  }
  parts.push({ type: 'divider' }, ...hostParts(r), footer(r));
  const summary = `${r.env}: ${WORD[overall]}${r.version.kind === 'ok' ? `, version ${r.version.value.app_version}` : ''}${maintenanceOf(r).running ? ', maintenance on' : ''}`;
  return { summary, parts };
}

export function versionMsg(r: HealthReport): Msg {
  const parts: Part[] = [];
  const v = r.version;
  const running = r.host.kind === 'ok' ? r.host.value.runningTag : undefined;
  if (v.kind === 'ok') {
    parts.push({ type: 'header', text: `${r.env}: version ${v.value.app_version}` });
    const facts = [`*API reports*\n${code(v.value.app_version)}`];
    if (v.value.git_commit) facts.push(`*Commit*\n${code(v.value.git_commit.slice(0, 12))}`);
    if (v.value.build_time) facts.push(`*Built*\n${esc(v.value.build_time)}`);
    parts.push({ type: 'fields', items: facts });
    if (running !== undefined && running !== v.value.app_version) {
      parts.push({ type: 'section', text: `⚠️ The API reports ${code(v.value.app_version)} but the engramia-api container runs image tag ${code(running)}.` });
    }
  } else if (v.kind === 'maintenance') {
    parts.push({ type: 'header', text: `🚧 ${r.env}: in maintenance` });
    parts.push({
      type: 'section',
      text: `/v1/version answers 503 during maintenance${running ? `; the host runs image tag ${code(running)}` : ''}.`,
    });
  } else {
    parts.push({ type: 'header', text: `${r.env}: version unknown` });
    parts.push(...errorParts(v.error, '⚠️ /v1/version:'));
    if (running) parts.push({ type: 'section', text: `The host runs image tag ${code(running)}.` });
  }
  parts.push({ type: 'divider' }, ...hostParts(r), footer(r));
  const shown = v.kind === 'ok' ? v.value.app_version : running ?? 'unknown';
  return { summary: `${r.env}: version ${shown}${v.kind === 'maintenance' ? ' (maintenance on)' : ''}`, parts };
}
