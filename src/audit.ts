import type { AuditEvent, OpsStore } from './jobs/store.js';
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

/** User text as the audit keeps it: bounded, printable. */
export function auditText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
