import { describe, expect, it } from 'vitest';
import { parseTopPids } from '../../src/jobs/recovery.js';

// `docker top` as the CLI prints it: a tabwriter table (min width 20, padding 3), one header per container.
const TOP = [
  'UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD',
  'engramia            31825               31804               0                   10:41               ?                   00:00:01            /usr/bin/python3 /usr/local/bin/uvicorn engramia.api.app:create_app --factory --host 0.0.0.0 --port 8000',
  'engramia            32010               31804               2                   10:44               ?                   00:00:00            /usr/bin/python3 /usr/bin/alembic upgrade head',
  'UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD',
  'root                32400               32380               0                   10:44               ?                   00:00:00            /usr/bin/python3 /usr/bin/alembic downgrade 032',
].join('\n');

describe('parseTopPids (what still runs inside the containers after its client died)', () => {
  it('finds the program by name in the CMD column of every container, with its host pid', () => {
    expect(parseTopPids(TOP, 'alembic')).toEqual(['32010', '32400']);
  });

  it('finds nothing when only the service itself runs, and ignores the program name in other columns or inside a longer word', () => {
    const quiet = TOP.split('\n').slice(0, 2).join('\n');
    expect(parseTopPids(quiet, 'alembic')).toEqual([]);
    expect(parseTopPids(`${quiet}\nalembic             1                   0                   0                   10:44               ?                   00:00:00            sleep 100`, 'alembic')).toEqual([]);
    expect(parseTopPids(`${quiet}\nroot                7                   0                   0                   10:44               ?                   00:00:00            /opt/alembic-tools/run`, 'alembic')).toEqual([]);
  });

  it('reads empty output (no container) as nothing running', () => {
    expect(parseTopPids('', 'alembic')).toEqual([]);
  });
});
