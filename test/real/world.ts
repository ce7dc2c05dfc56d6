// The whole real host in one call: dockerd, registry, images pushed, and the VM's sshd. Deploy
// folders (one per test file, see deploy-host.ts) are made by the tests.
import type { SshdServer } from '../world/sshd.js';
import { startVmSshd } from './deploy-host.js';
import { startDockerd, type Dockerd } from './dockerd.js';
import { buildAndPushImages, type BuiltImages } from './images.js';
import { startRegistry, type Registry } from './registry.js';
import { requireRealHost } from './requirements.js';
import type { ProvidedContext } from 'vitest';

export interface RealHost {
  readonly dockerd: Dockerd;
  readonly registry: Registry;
  readonly images: BuiltImages;
  readonly sshd: SshdServer;
  /** The VM's record of every docker command (deploy-host.ts, dockerRecorder). */
  readonly commandLog: string;
  /** Milliseconds per phase, for the tier's report. */
  readonly timings: Record<string, number>;
  stop(): Promise<void>;
}

export async function startRealHost(): Promise<RealHost> {
  requireRealHost();
  const timings: Record<string, number> = {};
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    // Reverse order: sshd first (no new sessions), the daemon last (it stops the containers).
    for (const s of stops.reverse()) await s().catch((e: unknown) => console.warn(`[real] stop failed: ${String(e)}`));
  };
  try {
    let t = Date.now();
    const [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
    stops.push(() => dockerd.stop(), () => registry.stop());
    timings.dockerdStart = dockerd.startMs;
    timings.daemonAndRegistry = Date.now() - t;

    t = Date.now();
    const images = await buildAndPushImages(dockerd, registry);
    Object.assign(timings, images.timings);
    timings.images = Date.now() - t;

    const { sshd, commandLog } = await startVmSshd(dockerd);
    stops.push(() => sshd.stop());
    return { dockerd, registry, images, sshd, commandLog, timings, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What test files (and the bench) need to know of a started real host: plain, serialisable facts. */
export function realHostFacts(host: RealHost): ProvidedContext['realHost'] {
  const { dockerd, registry, sshd } = host;
  return {
    dockerHost: dockerd.dockerHost,
    dockerConfig: dockerd.dockerConfig,
    registry: { address: registry.address, username: registry.username, password: registry.password, pid: registry.pid },
    commandLog: host.commandLog,
    apiRepository: host.images.apiRepository,
    baseImage: host.images.base,
    sshd: { host: sshd.host, port: sshd.port, username: sshd.username, privateKeyPath: sshd.privateKeyPath, hostKeySha256: sshd.hostKeySha256, home: sshd.home },
  };
}
