import { createHash } from 'node:crypto';

/** Names the exact plan a gate was posted for; a press for another plan is refused. */
export function planHash(d: { env: string; version: string; jobId: string }, extra: readonly string[] = []): string {
  return createHash('sha256').update(JSON.stringify([d.jobId, d.env, d.version, ...extra])).digest('hex').slice(0, 16);
}
