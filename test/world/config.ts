// The bot's config for a test world or a benchmark: one production environment
// pointing at the loopback sshd and the simulated host. No vitest imports, so
// benchmarks can use it too.
export const OPS_CHANNEL = 'C0OPS';
export const ALICE = 'U01ALICE';

type Sshd = { host: string; port: number; username: string; privateKeyPath: string; hostKeySha256: string };
/** The image registry the bot logs in to; the simulated host's is ghcr.io, the real-host tier's a loopback one. */
type Registry = { host: string; username: string; tokenEnv: string };
const SIM_REGISTRY: Registry = { host: 'ghcr.io', username: 'engramia-bot', tokenEnv: 'GHCR_TOKEN' };

/** Where the host has the deploy folder and what it answers on: the parts that differ between the tiers' hosts. */
interface HostYaml {
  sshd: Sshd;
  deployPath: string;
  apiUrl: string;
  fourEyes?: boolean;
  tagVariable?: string;
  registry?: Registry;
  envExtra?: Record<string, string | number | boolean>;
}

/** One entry under `environments:` (its lines indented for that place), pointing at a loopback sshd and a simulated host. */
/**
 * `fourEyes` is off unless asked for: on a four-eyes environment every change waits for a second person, and
 * only the tests about access (and the benches that say so) want that; the bot's own default stays on.
 */
export function environmentYaml(name: string, opts: HostYaml & { default: boolean }): string {
  const registry = opts.registry ?? SIM_REGISTRY;
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
    tagVariable: ${opts.tagVariable ?? 'IMAGE_TAG'}
    apiBaseUrl: ${opts.apiUrl}
    apiKeyEnv: ENGRAMIA_PROD_API_KEY
    registry:
      host: ${registry.host.includes(':') ? JSON.stringify(registry.host) : registry.host}
      username: ${registry.username}
      tokenEnv: ${registry.tokenEnv}
${Object.entries(opts.envExtra ?? {})
  .map(([k, v]) => `    ${k}: ${v}\n`)
  .join('')}`;
}

export function configYaml(opts: HostYaml & { access?: { deployers?: string[]; approvers?: string[]; admins?: string[] } }): string {
  const { access, ...host } = opts;
  return `slack:
  allowedChannels: [${OPS_CHANNEL}]
access:
  deployers: [${(access?.deployers ?? [ALICE]).join(', ')}]
  approvers: [${(access?.approvers ?? ['U02BOB']).join(', ')}]
  admins: [${(access?.admins ?? ['U03CAROL']).join(', ')}]
environments:
${environmentYaml('production', { default: true, ...host })}`;
}
