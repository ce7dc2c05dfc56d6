// The pure half of src/runbooks/snapshot.ts: reading df and psql, the space margin, and retention.
import { describe, expect, it } from 'vitest';
import { parseDbSize, parseDfAvailable, snapshotsToRemove, spaceNeeded } from '../../src/runbooks/snapshot.js';

describe('snapshot space check', () => {
  it('reads the Available column of `df -Pk` (1024-byte blocks), also with a space in the mount point', () => {
    const df = 'Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/sda1         51290592 20131412  28521572      42% /\n';
    expect(parseDfAvailable(df)).toBe(28521572 * 1024);
    expect(parseDfAvailable('Filesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 64 64 0 100% /mnt/my backups\n')).toBe(0);
    expect(parseDfAvailable('df: /nope: No such file or directory\n')).toBeUndefined();
  });

  it('reads the number psql -A -t prints, and nothing else', () => {
    expect(parseDbSize('9187331\n')).toBe(9187331);
    expect(parseDbSize('')).toBeUndefined();
    expect(parseDbSize('ERROR:  permission denied\n')).toBeUndefined();
  });

  it('needs the database size × 1.2 plus 64 MiB', () => {
    expect(spaceNeeded(0)).toBe(64 * 1024 * 1024);
    expect(spaceNeeded(1000 * 1024 * 1024)).toBe(1264 * 1024 * 1024);
  });
});

describe('snapshot retention', () => {
  const dir = '/var/backups/engramia';
  const snap = (stamp: string) => `${dir}/pre_rollback_${stamp}.dump`;

  it('keeps the newest N including the new one; N+2 old files lose the 3 oldest', () => {
    const old = ['202601010900', '202601020900', '202601030900', '202601040900', '202601050900'].map(snap);
    const fresh = snap('202612021510');
    expect(snapshotsToRemove([...old, fresh], 4, fresh)).toEqual([snap('202601020900'), snap('202601010900')]);
    expect(snapshotsToRemove([...old, fresh], 3, fresh)).toEqual([snap('202601030900'), snap('202601020900'), snap('202601010900')]);
  });

  it('orders a same-minute `_2` after its plain name, and never removes the new one or foreign files', () => {
    const files = [snap('202612021510'), snap('202612021510_2'), snap('202612021509'), `${dir}/pre_rollback_manual.dump`, `${dir}/pre_rollback_202612021508.dump.partial`];
    expect(snapshotsToRemove(files, 2, snap('202612021510_2'))).toEqual([snap('202612021509')]);
    // A clock that went back: the new file sorts oldest but is kept anyway.
    expect(snapshotsToRemove(files, 1, snap('202612021509'))).toEqual([snap('202612021510_2'), snap('202612021510')]);
  });
});
