import { ErrorCode, isChatOpsError } from '../errors.js';
import type { DeliveryFailure } from '../jobs/types.js';

/** Slack's own error codes that say "try later" rather than "this message is wrong". */
const TRANSIENT_SLACK_ERRORS = new Set([
  'ratelimited',
  'rate_limited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'slack_webapi_request_error',
  'slack_webapi_http_error',
  'slack_webapi_rate_limited_error',
]);

/**
 * Reads the details SlackOutbox puts on its errors (`slackError`, `status`, `retryAfterSec`). A 5xx, a timeout,
 * a network error or a 429 is retried; a Slack error about the message or the channel (invalid_blocks,
 * channel_not_found, not_authed, msg_too_long, …) would fail the same way again, so it is not.
 */
export function classifySlackFailure(err: unknown): DeliveryFailure {
  if (!isChatOpsError(err, ErrorCode.SlackApiError)) {
    // Not a Slack answer: a bug in building the message, which no retry fixes.
    return { transient: false, reason: err instanceof Error ? err.message : String(err) };
  }
  const d = err.details;
  const slackError = typeof d.slackError === 'string' ? d.slackError : undefined;
  const status = typeof d.status === 'number' ? d.status : undefined;
  const retryAfterMs = typeof d.retryAfterSec === 'number' && Number.isFinite(d.retryAfterSec) ? Math.max(0, d.retryAfterSec) * 1000 : undefined;
  let transient: boolean;
  if (retryAfterMs !== undefined) transient = true;
  else if (status !== undefined) transient = status >= 500 || status === 408 || status === 429;
  else if (slackError === undefined) transient = true;
  else transient = TRANSIENT_SLACK_ERRORS.has(slackError) || /^http_(5\d\d|408|429)$/.test(slackError);
  return { transient, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), reason: slackError ?? err.message };
}
