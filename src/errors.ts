/**
 * Every failure the bot reports carries a code. What the operator sees for each
 * code is decided in one place (`src/render/errors.ts`), never where it is thrown.
 */
export const ErrorCode = {
  ConfigInvalid: 'CONFIG_INVALID',
  SecretMissing: 'SECRET_MISSING',
  CommandInvalid: 'COMMAND_INVALID',
  ChannelNotAllowed: 'CHANNEL_NOT_ALLOWED',
  EnvUnknown: 'ENV_UNKNOWN',
  Forbidden: 'FORBIDDEN',
  Locked: 'LOCKED',
  Replay: 'REPLAY',
  Cancelled: 'CANCELLED',
  NoRollbackTarget: 'NO_ROLLBACK_TARGET',
  QueueUnavailable: 'QUEUE_UNAVAILABLE',
  SshHostKeyMismatch: 'SSH_HOST_KEY_MISMATCH',
  SshAuthFailed: 'SSH_AUTH_FAILED',
  SshConnectFailed: 'SSH_CONNECT_FAILED',
  SshTimeout: 'SSH_TIMEOUT',
  SshDisconnected: 'SSH_DISCONNECTED',
  /** The worker is shutting down and stopped a command it can safely run again later. */
  Interrupted: 'INTERRUPTED',
  /** Another worker owns this job now (its BullMQ lock expired here): this one must not touch it. */
  JobLockLost: 'JOB_LOCK_LOST',
  RemoteCommandFailed: 'REMOTE_COMMAND_FAILED',
  /** The registry does not have the image tag asked for ("manifest unknown"): nothing was changed. */
  ImageNotFound: 'IMAGE_NOT_FOUND',
  UnsafeArgument: 'UNSAFE_ARGUMENT',
  ApiUnreachable: 'API_UNREACHABLE',
  ApiTimeout: 'API_TIMEOUT',
  ApiUnauthorized: 'API_UNAUTHORIZED',
  ApiMaintenance: 'API_MAINTENANCE',
  ApiRateLimited: 'API_RATE_LIMITED',
  ApiBadResponse: 'API_BAD_RESPONSE',
  SlackApiError: 'SLACK_API_ERROR',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ChatOpsError extends Error {
  readonly code: ErrorCode;
  /** Structured facts the renderer may show; must never hold secrets. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatOpsError';
    this.code = code;
    this.details = details;
  }
}

export function isChatOpsError(err: unknown, code?: ErrorCode): err is ChatOpsError {
  return err instanceof ChatOpsError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a ChatOpsError so callers handle one type. */
export function asChatOpsError(err: unknown): ChatOpsError {
  if (err instanceof ChatOpsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ChatOpsError(ErrorCode.Internal, message, {}, { cause: err });
}
