// vitest globalSetup of the real-host tier: one real host for the whole run (images are built
// once), handed to test files through `inject('realHost')`.
import type { TestProject } from 'vitest/node';
import { realHostFacts, startRealHost } from './world.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const host = await startRealHost();
  console.log(`[real] host ready: ${Object.entries(host.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}`);
  project.provide('realHost', realHostFacts(host));
  return () => host.stop();
}
