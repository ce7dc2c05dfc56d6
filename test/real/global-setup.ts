// vitest globalSetup of the real-host tier: one real host for the whole run (images are built
// once), handed to test files through `inject('realHost')`.
import type { TestProject } from 'vitest/node';
import { startRealHost } from './world.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const host = await startRealHost();
  const { dockerd, registry, sshd, timings } = host;
  console.log(`[real] host ready: ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}`);
  project.provide('realHost', {
    dockerHost: dockerd.dockerHost,
    dockerConfig: dockerd.dockerConfig,
    registry: { address: registry.address, username: registry.username, password: registry.password, pid: registry.pid },
    commandLog: host.commandLog,
    apiRepository: host.images.apiRepository,
    baseImage: host.images.base,
    sshd: {
      host: sshd.host,
      port: sshd.port,
      username: sshd.username,
      privateKeyPath: sshd.privateKeyPath,
      hostKeySha256: sshd.hostKeySha256,
      home: sshd.home,
    },
  });
  return () => host.stop();
}
