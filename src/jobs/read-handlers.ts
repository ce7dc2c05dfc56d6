import { diagnose } from './diagnose.js';
import { health, version } from './health.js';
import { logs } from './logs.js';
import { migrations } from './migrations.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';
import { status } from './status.js';
import type { ReadJobData, ReadJobName } from './types.js';

type ReadHandler = (data: ReadJobData, ctx: ReadJobContext) => Promise<ReadJobResult>;

/**
 * One handler per read command. `satisfies` makes a name added to READ_JOB_NAMES without its handler
 * a compile error here, not a job that fails at run time.
 */
export const READ_HANDLERS = { health, version, migrations, status, logs, diagnose } satisfies Record<ReadJobName, ReadHandler>;

export function runReadJob(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  return READ_HANDLERS[data.kind](data, ctx);
}
