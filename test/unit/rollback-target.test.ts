import { describe, expect, it } from 'vitest';
import { resolveRollbackTarget } from '../../src/commands/handle.js';
import type { HistoryEntry } from '../../src/jobs/store.js';

/** History entries, newest first, as the bot records them. */
function h(...rows: Array<[HistoryEntry['kind'], string, string | null, string]>): HistoryEntry[] {
  return rows.map(([kind, version, fromVersion, outcome], i) => ({
    jobId: `${kind}-${i}`,
    kind,
    env: 'production',
    version,
    fromVersion,
    user: 'U01ALICE',
    outcome,
    startedAt: '2026-06-01T10:00:00Z',
    endedAt: '2026-06-01T10:05:00Z',
    channel: 'C0OPS',
  }));
}

describe('rollback with no VERSION', () => {
  it('goes back past a same-version redeploy to the version before it', () => {
    expect(resolveRollbackTarget(h(['deploy', '0.6.1', '0.6.1', 'succeeded'], ['deploy', '0.6.1', '0.6.0', 'succeeded']))).toEqual({ target: '0.6.0', running: '0.6.1' });
  });

  it('has no target when the history holds only the running version', () => {
    expect(resolveRollbackTarget(h(['deploy', '0.6.0', '0.6.0', 'succeeded']))).toEqual({ target: undefined, running: '0.6.0' });
    expect(resolveRollbackTarget([])).toEqual({ target: undefined, running: undefined });
  });

  it('after a failed deploy, goes to the version it started from', () => {
    expect(resolveRollbackTarget(h(['deploy', '0.6.1', '0.6.0', 'failed']))).toEqual({ target: '0.6.0', running: undefined });
    expect(resolveRollbackTarget(h(['deploy', '0.6.2', '0.6.1', 'failed'], ['deploy', '0.6.1', '0.6.0', 'succeeded']))).toEqual({ target: '0.6.1', running: undefined });
  });

  it('never picks a version a rollback moved away from: after rolling back 0.6.2 → 0.6.1 it goes on to 0.6.0', () => {
    const history = h(['rollback', '0.6.1', '0.6.2', 'succeeded'], ['deploy', '0.6.2', '0.6.1', 'succeeded'], ['deploy', '0.6.1', '0.6.0', 'succeeded']);
    expect(resolveRollbackTarget(history)).toEqual({ target: '0.6.0', running: '0.6.1' });
  });
});
