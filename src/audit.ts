import type { AuditEvent, OpsStore } from './jobs/store.js';
import type { Origin } from './jobs/types.js';
import type { Logger } from './logger.js';

/**
 * Records who did what: to the JSON log and to a bounded Redis stream. An audit
 * write never fails the action it records; a Redis outage leaves the log line.
 */
export async function audit(store: Pick<OpsStore, 'appendAudit'> | undefined, log: Logger, event: AuditEvent): Promise<void> {
  log.info({ audit: event }, `audit: ${event.type}`);
  try {
    await store?.appendAudit(event);
  } catch (err) {
    log.warn({ err: (err as Error).message, auditType: event.type }, 'audit event not written to Redis');
  }
}

/** The audit's transport fields for an action that came from `o`. */
export function via(o: { transport?: Origin['transport'] | undefined; osUser?: string | undefined }): Pick<AuditEvent, 'transport' | 'osUser'> {
  return { transport: o.transport ?? 'slack', ...(o.transport === 'console' && o.osUser ? { osUser: o.osUser } : {}) };
}

/** User text as the audit keeps it: bounded, printable. */
export function auditText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
