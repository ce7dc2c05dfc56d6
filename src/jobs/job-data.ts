import type { RunbookData } from '../runbooks/kernel/types.js';
import type { ReadJobData } from './types.js';

/** What a queued job carries: a read-only answer, or a runbook. Its own module: the runbook kernel's types use jobs/types.ts too. */
export type JobData = ReadJobData | RunbookData;
