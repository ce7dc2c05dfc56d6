import { ChatOpsError, ErrorCode } from '../errors.js';
import { code, esc, mention, type Part } from './model.js';

export interface ErrorView {
  title: string;
  detail?: string;
  hint?: string;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/**
 * The one place that decides what an operator reads for each error code.
 * Messages name what was wrong and what would be right, and never carry
 * stack traces or secrets (details hold only safe facts).
 */
export function describeError(err: ChatOpsError): ErrorView {
  const d = err.details;
  switch (err.code) {
    case ErrorCode.CommandInvalid:
      return { title: esc(err.message), ...(d.usage ? { hint: `Usage: ${code(str(d.usage))}` } : {}) };
    case ErrorCode.ChannelNotAllowed:
      return {
        title: 'This command is not accepted here.',
        detail: esc(err.message),
        hint: `Run it in ${(d.allowed as string[] | undefined)?.map((c) => `<#${c}>`).join(', ') || 'an allowed channel'}.`,
      };
    case ErrorCode.EnvUnknown:
      return { title: esc(err.message), hint: `Known environments: ${(d.known as string[] | undefined)?.map(code).join(', ') ?? 'none'}.` };
    case ErrorCode.Forbidden:
      return { title: esc(err.message), ...(d.who ? { hint: esc(str(d.who)) } : {}) };
    case ErrorCode.Locked:
      return {
        title: d.holderUser
          ? `🔒 ${esc(str(d.env))} is locked by ${esc(str(d.holderCommand))} (${mention(str(d.holderUser))}, ${esc(str(d.since))}).`
          : `🔒 ${esc(err.message)}`,
        ...(d.jobId ? { hint: `Nothing was queued. Wait for job ${code(str(d.jobId))} to finish.` } : { hint: 'Nothing was queued.' }) };
    case ErrorCode.Replay:
      return { title: 'This request was already handled; the repeat was ignored and nothing ran again.' };
    case ErrorCode.Cancelled:
      return { title: esc(err.message) };
    case ErrorCode.NoRollbackTarget:
      return { title: esc(err.message), hint: 'Name the version to go back to, e.g. `/engramia rollback 0.6.0`.' };
    case ErrorCode.QueueUnavailable:
      return {
        title: 'The job queue is unavailable, so nothing was queued and nothing ran on the host.',
        detail: 'The bot could not reach Redis in time.',
        hint: 'Try again in a minute. If it persists, check the Redis service behind the bot (`/healthz` shows its state).',
      };
    case ErrorCode.SshHostKeyMismatch:
      return {
        title: `SSH to ${code(str(d.host))} refused: the host key does not match the pinned fingerprint.`,
        detail: `Pinned (config): ${code(str(d.expected))}\nPresented by the host: ${code(str(d.presented))}`,
        hint:
          'Nothing was run. If the host was rebuilt, check the new key on its console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and update `ssh.hostKeySha256`; otherwise treat this as a possible interception.',
      };
    case ErrorCode.SshAuthFailed:
      return {
        title: `SSH login to ${code(str(d.host))} as ${code(str(d.username))} was refused.`,
        hint: "Check that the bot's public key is in that user's `~/.ssh/authorized_keys` on the host.",
      };
    case ErrorCode.SshConnectFailed:
      return { title: `Cannot open an SSH connection to ${code(str(d.host))}: ${esc(str(d.reason))}.`, hint: 'Check the host is up and that port is reachable from the bot.' };
    case ErrorCode.SshTimeout:
      return {
        title: esc(err.message),
        detail: d.killed ? 'The remote command was stopped.' : 'The bot could not confirm that the remote command was stopped; check the host.',
      };
    case ErrorCode.SshDisconnected:
      return { title: esc(err.message), hint: d.started ? 'Check the host state before retrying.' : 'Nothing was started; it is safe to retry.' };
    case ErrorCode.Interrupted:
      return { title: 'The worker is shutting down; the step was stopped and will run again on the next worker.' };
    case ErrorCode.JobLockLost:
      return { title: 'Another worker took this job over; this one stopped touching it.', hint: 'Nothing to do: the job goes on there.' };
    case ErrorCode.ImageNotFound:
      return { title: esc(err.message), ...(d.outputTail ? { detail: str(d.outputTail) } : {}), hint: 'Check the tag against the published releases; a typo or an unpublished build is the usual cause.' };
    case ErrorCode.RemoteCommandFailed:
      return { title: esc(err.message), ...(d.outputTail ? { detail: str(d.outputTail) } : {}) };
    case ErrorCode.ApiUnreachable:
      return {
        title: `Engramia API unreachable: ${esc(str(d.reason))}.`,
        detail: code(str(d.url)),
        hint:
          d.reason === 'DNS lookup failed'
            ? 'Check the API host name in `apiBaseUrl` and DNS.'
            : 'Check that Caddy and the engramia-api container are running (`/engramia status`).',
      };
    case ErrorCode.ApiTimeout:
      return { title: esc(err.message), hint: 'The API may be overloaded or hung; check its logs (`/engramia logs`).' };
    case ErrorCode.ApiUnauthorized:
      return {
        title: `The API rejected the bot's key (HTTP ${str(d.httpStatus)}).`,
        hint: `The key in ${code(str(d.keyEnv))} is not one of the host's \`ENGRAMIA_API_KEYS\`. Update the bot's secret or the host's .env.`,
      };
    case ErrorCode.ApiRateLimited:
      return { title: esc(err.message), hint: `Retry after ${esc(str(d.retryAfter) || '60')} s.` };
    case ErrorCode.ApiBadResponse:
      return {
        title: esc(err.message),
        ...(d.bodyExcerpt ? { detail: str(d.bodyExcerpt) } : {}),
        ...(d.httpStatus === 502 ? { hint: 'A 502 from Caddy usually means the engramia-api container is not running.' } : {}),
      };
    case ErrorCode.ConfigInvalid:
    case ErrorCode.SecretMissing:
      return { title: 'The bot is misconfigured.', detail: esc(err.message) };
    case ErrorCode.ApiMaintenance:
      return { title: 'The API is in maintenance mode (HTTP 503).' };
    case ErrorCode.SlackApiError:
      return { title: `Slack refused a message: ${esc(str(d.slackError) || err.message)}.` };
    case ErrorCode.UnsafeArgument:
      return { title: 'Refused an unsafe argument; nothing ran.', detail: esc(err.message) };
    case ErrorCode.Internal:
      return { title: 'Unexpected error in the bot.', hint: 'Details are in the bot log.' };
  }
}

/**
 * What the person who pressed a gate button reads when the press could not be handled: the
 * decision was not written, so the same button may simply be pressed again.
 */
export function gatePressFailedText(err: ChatOpsError): string {
  if (err.code === ErrorCode.QueueUnavailable) {
    return '⚠️ *Redis is unreachable, so your press was not recorded.* Nothing was decided and nothing ran. Try again in a minute, once Redis is back.';
  }
  return `⚠️ ${describeError(err).title} Your press was not recorded; try again.`;
}

/** Renders an error as message parts; output tails go in a code block, never inline. */
export function errorParts(err: ChatOpsError, prefix = '❌'): Part[] {
  const v = describeError(err);
  const parts: Part[] = [{ type: 'section', text: `${prefix} *${v.title}*` }];
  if (v.detail) {
    if (err.code === ErrorCode.RemoteCommandFailed || err.code === ErrorCode.ImageNotFound || err.code === ErrorCode.ApiBadResponse) parts.push({ type: 'code', text: v.detail });
    else parts.push({ type: 'section', text: v.detail });
  }
  if (v.hint) parts.push({ type: 'context', items: [v.hint] });
  return parts;
}
