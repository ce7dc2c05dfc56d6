// Preflight for the real-host tier: it starts a real dockerd and registry, so it needs root and
// Debian's packages. When something is missing it fails with ONE line naming what and the command
// that installs it; it never skips.
import { isExecutable } from '../world/requirements.js';

export const REAL_INSTALL_COMMAND = 'sudo bash scripts/real-host/install.sh';

/** The Debian CLI, not whatever `docker` comes first on PATH: it must match the 20.10 engine. */
export const DOCKER_CLI = '/usr/bin/docker';
/** Compose v2's cli-plugin, where install.sh puts it (a folder the Docker CLI searches by itself). */
export const COMPOSE_PLUGIN = process.env.COMPOSE_PLUGIN_DIR
  ? `${process.env.COMPOSE_PLUGIN_DIR}/docker-compose`
  : '/usr/local/lib/docker/cli-plugins/docker-compose';

export const REAL_BINARIES = {
  dockerd: '/usr/sbin/dockerd',
  docker: DOCKER_CLI,
  compose: COMPOSE_PLUGIN,
  registry: '/usr/bin/docker-registry',
  htpasswd: '/usr/bin/htpasswd',
  debootstrap: '/usr/sbin/debootstrap',
  caddy: '/usr/bin/caddy',
  // Shared with `npm test`: the VM is a real sshd, and the bot keeps its state in its own Redis.
  sshd: '/usr/sbin/sshd',
  'ssh-keygen': '/usr/bin/ssh-keygen',
  'redis-server': '/usr/bin/redis-server',
} as const;

export interface HostFacts {
  isRoot: boolean;
  binaries: Readonly<Record<string, string>>;
}

const thisMachine = (): HostFacts => ({ isRoot: process.getuid?.() === 0, binaries: REAL_BINARIES });

/** What is missing for the tier, as short phrases; empty when it can run. */
export function missingRealHostRequirements(facts: HostFacts = thisMachine()): string[] {
  const missing: string[] = [];
  if (!facts.isRoot) missing.push('root (dockerd needs it)');
  for (const [name, file] of Object.entries(facts.binaries)) {
    if (!isExecutable(file)) missing.push(`${name} (${file})`);
  }
  return missing;
}

/** Throws one line naming everything missing and the install command. */
export function requireRealHost(facts: HostFacts = thisMachine()): void {
  const missing = missingRealHostRequirements(facts);
  if (missing.length > 0) {
    throw new Error(`real-host tier cannot start: missing ${missing.join(', ')}; install with: ${REAL_INSTALL_COMMAND}`);
  }
}
