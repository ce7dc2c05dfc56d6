// The bot's config for a test world or a benchmark: one production environment
// pointing at the loopback sshd and the simulated host. No vitest imports, so
// benchmarks can use it too.
export const OPS_CHANNEL = 'C0OPS';
export const ALICE = 'U01ALICE';

type Sshd = { host: string; port: number; username: string; privateKeyPath: string; hostKeySha256: string };

/** One entry under `environments:` (its lines indented for that place), pointing at a loopback sshd and a simulated host. */
/**
 * `fourEyes` is off unless asked for: on a four-eyes environment every change waits for a second person, and
 * only the tests about access (and the benches that say so) want that; the bot's own default stays on.
 */
export function environmentYaml(name: string, opts: { default: boolean; sshd: Sshd; deployPath: string; apiUrl: string; fourEyes?: boolean; envExtra?: Record<string, string | number | boolean> }): string {
  return `  ${name}:
    default: ${opts.default}
    fourEyes: ${opts.fourEyes ?? false}
    ssh:
      host: ${opts.sshd.host}
      port: ${opts.sshd.port}
      username: ${opts.sshd.username}
      privateKeyPath: ${opts.sshd.privateKeyPath}
      hostKeySha256: "${opts.sshd.hostKeySha256}"
    deployPath: ${opts.deployPath}
    composeFile: docker-compose.prod.yml
    tagVariable: IMAGE_TAG
    apiBaseUrl: ${opts.apiUrl}
    apiKeyEnv: ENGRAMIA_PROD_API_KEY
    registry:
      host: ghcr.io
      username: engramia-bot
      tokenEnv: GHCR_TOKEN
${Object.entries(opts.envExtra ?? {})
  .map(([k, v]) => `    ${k}: ${v}\n`)
  .join('')}`;
}

export function configYaml(opts: {
  envExtra?: Record<string, string | number | boolean>;
  access?: { deployers?: string[]; approvers?: string[]; admins?: string[] };
  deployPath: string;
  apiUrl: string;
  sshd: Sshd;
  fourEyes?: boolean;
}): string {
  return `slack:
  allowedChannels: [${OPS_CHANNEL}]
access:
  deployers: [${(opts.access?.deployers ?? [ALICE]).join(', ')}]
  approvers: [${(opts.access?.approvers ?? ['U02BOB']).join(', ')}]
  admins: [${(opts.access?.admins ?? ['U03CAROL']).join(', ')}]
environments:
${environmentYaml('production', { default: true, sshd: opts.sshd, ...(opts.fourEyes !== undefined ? { fourEyes: opts.fourEyes } : {}), deployPath: opts.deployPath, apiUrl: opts.apiUrl, ...(opts.envExtra ? { envExtra: opts.envExtra } : {}) })}`;
}
