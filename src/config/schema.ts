import { z } from 'zod';

/** Docker tag grammar from the contract; also what a compose variable may hold safely. */
export const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const ENV_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SLACK_PRINCIPAL = /^[UWS][A-Z0-9]{2,}$/;
const SLACK_CHANNEL = /^[CGD][A-Z0-9]{2,}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
// Host names and IPs only: the value is handed to a socket, but it also appears in messages.
const HOSTNAME = /^[A-Za-z0-9.:[\]-]{1,253}$/;
const SAFE_PATH = /^\/[A-Za-z0-9._\/-]*$/;
const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

const envVarName = z.string().regex(ENV_VAR_NAME, 'must be an environment variable name such as ENGRAMIA_PROD_API_KEY');

const principals = z
  .array(z.string().regex(SLACK_PRINCIPAL, 'must be a Slack user id (U…, W…) or user-group id (S…)'))
  .default([]);

/** `30s`, `1m`, `5m`, `2h`: how operators write an interval; the unit is required so `1` is never a guess. */
const DURATION = /^(\d{1,7})(s|m|h)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration such as `30s` or `5m`; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
}

const duration = (what: string, minMs: number, maxMs: number, range: string) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? `is required: ${what}, such as 1m` : 'must be a duration such as 30s, 1m or 5m (a whole number and s, m or h)') })
    .regex(DURATION, 'must be a duration such as 30s, 1m or 5m (a whole number and s, m or h)')
    .refine((t) => {
      const ms = parseDuration(t);
      return ms === undefined || (ms >= minMs && ms <= maxMs);
    }, `must be from ${range}`);

/**
 * Health watch: the bot probes deep health on its own and says so in the ops channel when the
 * status changes. The channel defaults to the first of slack.allowedChannels (checked in load.ts).
 */
const watchSchema = z.strictObject({
  every: duration('how often to probe', 1000, 24 * 3_600_000, '1s to 24h'),
  rollbackWindow: duration('how long after a deploy an error offers a rollback', 1000, 7 * 24 * 3_600_000, '1s to 7 days').default('30m'),
  channel: z.string().regex(SLACK_CHANNEL, 'must be a Slack channel id (C…, G…)').optional(),
});

/** A time limit in seconds: at least 1 (tests), at most a day. */
const seconds = (d: number) => z.number().int().min(1).max(24 * 3600).default(d);

const sshSchema = z.strictObject({
  host: z.string().regex(HOSTNAME, 'must be a host name or IP address'),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/, 'must be a Unix user name such as deploy'),
  privateKeyPath: z.string().min(1, 'must be the path of the SSH private key file'),
  hostKeySha256: z
    .string({ error: 'is required: the host key fingerprint as `ssh-keygen -lf` prints it (SHA256:…); the bot never trusts a key on first use' })
    .regex(FINGERPRINT, 'must be a fingerprint as `ssh-keygen -lf` prints it, e.g. SHA256: followed by 43 base64 characters'),
  readyTimeoutMs: z.number().int().min(1000).max(120_000).default(15_000),
  /** Commands at once on the one connection; keep it under the host's sshd `MaxSessions` (10 by default). */
  maxSessions: z.number().int().min(1).max(64).default(8),
});

const registrySchema = z.strictObject({
  host: z.string().regex(HOSTNAME, 'must be a registry host name such as ghcr.io'),
  username: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be a registry user name'),
  tokenEnv: envVarName,
});

const environmentSchema = z.strictObject({
  default: z.boolean().default(false),
  // Security by default: an environment must opt out of four-eyes explicitly.
  fourEyes: z.boolean().default(true),
  requireApproval: z.boolean().default(false),
  ssh: sshSchema,
  deployPath: z.string().regex(SAFE_PATH, 'must be an absolute path of letters, digits, ".", "_", "-" and "/"'),
  composeFile: z.string().regex(SAFE_FILE, 'must be a file name in deployPath, e.g. docker-compose.prod.yml').default('docker-compose.prod.yml'),
  tagVariable: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an upper-case variable name such as IMAGE_TAG or CORE_TAG').default('IMAGE_TAG'),
  apiBaseUrl: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.engramia.dev' })
    .refine((u) => !/^https?:\/\/[^/]*@/.test(u), 'must not contain credentials: the URL is shown in messages (the key goes in apiKeyEnv)'),
  apiKeyEnv: envVarName,
  registry: registrySchema,
  /** How long a gate waits for a decision before the job takes the safe branch. */
  gateTimeoutSeconds: z.number().int().min(5).max(24 * 3600).default(900),
  /** How long verification waits for a fresh container to report the new version. */
  verifySettleSeconds: z.number().int().min(0).max(600).default(60),
  /** Where pre-downgrade snapshots go; deployPath when unset. */
  backupPath: z.string().regex(SAFE_PATH, 'must be an absolute path of letters, digits, ".", "_", "-" and "/"').optional(),
  /** How many `pre_rollback_*.dump` snapshots stay in backupPath; older ones go once a new one is verified. */
  backups: z.strictObject({ keep: z.number().int().min(1).max(1000).default(10) }).default({ keep: 10 }),
  /**
   * Per-step command limits, in seconds. A command that runs longer is stopped on the host (its
   * whole process group), and the step fails with what it printed so far.
   */
  timeouts: z
    .strictObject({
      login: seconds(60),
      pull: seconds(900),
      up: seconds(300),
      migrate: seconds(900),
      snapshot: seconds(1800),
      /** Every other command: reads, .env edits, checks. */
      command: seconds(60),
    })
    .default({ login: 60, pull: 900, up: 300, migrate: 900, snapshot: 1800, command: 60 }),
  /** `status` warns when maintenance has been on longer than this. */
  maintenanceWarnMinutes: z.number().int().min(1).max(7 * 24 * 60).default(30),
  watch: watchSchema.optional(),
});

export const configSchema = z.strictObject({
  slack: z
    .strictObject({
      allowedChannels: z.array(z.string().regex(SLACK_CHANNEL, 'must be a Slack channel id (C…, G…)')).default([]),
    })
    .default({ allowedChannels: [] }),
  access: z
    .strictObject({ deployers: principals, approvers: principals, admins: principals })
    .default({ deployers: [], approvers: [], admins: [] }),
  environments: z
    .record(z.string().regex(ENV_NAME, 'environment names must be lower-case letters, digits, "-" or "_", starting with a letter'), environmentSchema)
    .refine((envs) => Object.keys(envs).length > 0, 'must define at least one environment'),
});

export type RawConfig = z.infer<typeof configSchema>;
/** The health watch as the bot uses it: intervals in milliseconds, the channel resolved. */
export interface WatchConfig {
  every: string;
  everyMs: number;
  rollbackWindow: string;
  rollbackWindowMs: number;
  channel: string;
}

export type EnvironmentConfig = Omit<z.infer<typeof environmentSchema>, 'watch'> & { name: string; watch?: WatchConfig };
