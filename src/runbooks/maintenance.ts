import { EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { showCommand } from '../ssh/quote.js';
import * as cmd from './commands.js';
import { PREFLIGHT, currentTag } from './deploy.js';
import { editEnv, mustSucceed, run } from './kernel/exec.js';
import type { RunbookData, StepDef } from './kernel/types.js';

const TOGGLE: StepDef = {
  id: 'toggle',
  title: (d) => `Turn maintenance ${d.maintenance ? 'on' : 'off'}`,
  safeToRepeat: true,
  changesRunningVersion: false,
  async run(ctx, rec) {
    const on = ctx.data.maintenance === true;
    const host = await probeHost(ctx.ssh, ctx.env);
    const api = new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey });
    const v = await api.version();
    const active = v.kind === 'maintenance';
    // Both halves must agree before "already": .env asks for it, and the running container obeys it.
    if (host.maintenanceInEnvFile === on && active === on) {
      return { status: 'done', note: `already ${on ? 'on' : 'off'}: nothing changed` };
    }
    const tag = currentTag(ctx.state);
    await editEnv(ctx, rec, 'ENGRAMIA_MAINTENANCE', on ? 'true' : null);
    ctx.state.maintenanceOnByUs = on;
    // Re-created on the version running now; the variable takes effect only on a new container.
    mustSucceed(await run(ctx, rec, cmd.up(ctx.env, tag, [cmd.API]), { timeout: 'up' }), 'docker compose up -d engramia-api');
    await ctx.store.setMaintenanceSince(ctx.data.env, on ? new Date().toISOString() : null).catch(() => undefined);
    return { status: 'done', note: `engramia-api re-created on ${tag} with maintenance ${on ? 'on' : 'off'}` };
  },
};

/** How often the report asks again while a re-created container is still starting. */
const SETTLE_POLL_MS = 1000;

const REPORT: StepDef = {
  id: 'report',
  title: () => 'Check what the API answers now',
  safeToRepeat: true,
  async run(ctx, rec) {
    const api = new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey });
    const want = ctx.data.maintenance === true;
    // A container re-created a moment ago is not listening yet (Caddy answers 502): ask again until it
    // answers as it should, or the environment's verifySettleSeconds are up, before judging.
    const version = await api.untilVersion((v) => (want ? v.kind === 'maintenance' : v.kind === 'ok'), Date.now() + ctx.verifySettleMs, SETTLE_POLL_MS);
    const health = await api.health();
    rec.command = `GET ${ctx.env.apiBaseUrl}/v1/health, /v1/version`;
    const h = health.kind === 'ok' ? `${health.httpStatus} ${health.value.status}` : health.kind === 'maintenance' ? '503 maintenance' : 'no answer';
    const ver = version.kind === 'ok' ? `${version.httpStatus} ${version.value.app_version}` : version.kind === 'maintenance' ? '503 maintenance' : 'no answer';
    const ok = want ? version.kind === 'maintenance' : version.kind === 'ok';
    if (!ok) ctx.state.warnings.push(`/v1/version answers ${ver} after ${Math.round(ctx.verifySettleMs / 1000)} s, which is not what maintenance ${want ? 'on' : 'off'} should give.`);
    // Kept in state so the final summary can quote it.
    ctx.state.summary = `/v1/health answers ${h}; /v1/version answers ${ver}.`;
    return { status: 'done', note: `/v1/health: ${h} · /v1/version: ${ver}` };
  },
};

export const MAINTENANCE_STEPS: readonly StepDef[] = [PREFLIGHT, TOGGLE, REPORT];

export function maintenanceDryRunPlan(env: EnvironmentConfig, data: RunbookData): string[] {
  const running = '<running tag>';
  return [
    showCommand(data.maintenance ? cmd.setEnvVar(env, 'ENGRAMIA_MAINTENANCE', 'true') : cmd.unsetEnvVar(env, 'ENGRAMIA_MAINTENANCE')),
    showCommand(cmd.up(env, running, [cmd.API])),
  ];
}
