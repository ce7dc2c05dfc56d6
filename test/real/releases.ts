// The Engramia releases the real-host tier builds, each an image in the local registry holding
// its own alembic migrations (only those up to its head) and the small API server.

/** How a release misbehaves, baked into its image as ENGRAMIA_TEST_FAULT. */
export type ReleaseFault = 'none' | 'crash' | 'deep-error';

export interface Release {
  readonly tag: string;
  /** Alembic head of this release (a three-digit revision id, like Engramia's). */
  readonly head: string;
  readonly fault: ReleaseFault;
  readonly gitCommit: string;
  readonly buildTime: string;
}

export const RELEASES: readonly Release[] = [
  { tag: '0.6.0', head: '031', fault: 'none', gitCommit: '6f0c2a1d9e4b7c3a8f5e2d1c0b9a8f7e6d5c4b3a', buildTime: '2026-02-03T15:00:00Z' },
  { tag: '0.6.1', head: '032', fault: 'none', gitCommit: '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d', buildTime: '2026-03-10T12:00:00Z' },
  { tag: '0.6.2', head: '033', fault: 'none', gitCommit: '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d', buildTime: '2026-04-21T17:30:00Z' },
  // Bad releases, the way incidents are: deep health answers `error`; crash-loops at start-up.
  { tag: '0.6.3', head: '033', fault: 'deep-error', gitCommit: '0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e', buildTime: '2026-05-02T09:00:00Z' },
  { tag: '0.7.0', head: '034', fault: 'crash', gitCommit: 'c0ffee00112233445566778899aabbccddeeff00', buildTime: '2026-06-01T08:00:00Z' },
];

export function release(tag: string): Release {
  const r = RELEASES.find((x) => x.tag === tag);
  if (!r) throw new Error(`no such test release: ${tag}`);
  return r;
}

/** Revision id of a migration file name ("032_pattern_feedback.py" -> "032"), or null. */
export function revisionOfFile(name: string): string | null {
  return /^(\d{3})_.*\.py$/.exec(name)?.[1] ?? null;
}

/** The migration files a release ships: every revision up to and including its head. */
export function migrationsOf(rel: Release, files: readonly string[]): string[] {
  return files.filter((f) => {
    const rev = revisionOfFile(f);
    return rev !== null && Number(rev) <= Number(rel.head);
  });
}
