import type { EnvSecrets } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import type { Logger } from '../logger.js';
import { SshExecutor, type SshHooks } from './executor.js';

/** One executor (so one connection) per environment's host, created on first use. */
export class SshPool {
  readonly #executors = new Map<string, SshExecutor>();

  constructor(
    private readonly secrets: Record<string, EnvSecrets>,
    private readonly log: Logger,
    /** Per executor, so each host's reconnects are counted against its own first connection. */
    private readonly hooks: (label: string) => SshHooks = () => ({}),
  ) {}

  for(env: EnvironmentConfig): SshExecutor {
    const key = `${env.ssh.username}@${env.ssh.host}:${env.ssh.port}/${env.ssh.hostKeySha256}`;
    let ex = this.#executors.get(key);
    if (!ex) {
      const secrets = this.secrets[env.name];
      if (!secrets) throw new Error(`no secrets resolved for environment ${env.name}`);
      const target = { host: env.ssh.host, port: env.ssh.port, username: env.ssh.username, hostKeySha256: env.ssh.hostKeySha256, readyTimeoutMs: env.ssh.readyTimeoutMs, maxSessions: env.ssh.maxSessions };
      ex = new SshExecutor(target, secrets.sshPrivateKey, this.log, this.hooks(`${target.username}@${target.host}:${target.port}`));
      this.#executors.set(key, ex);
    }
    return ex;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#executors.values()].map((e) => e.close()));
    this.#executors.clear();
  }
}
