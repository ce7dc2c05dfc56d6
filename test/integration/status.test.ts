import { afterEach, describe, expect, it } from 'vitest';
import { crashLoop, readCommandLog, setFault, setMaintenance } from '../world/sim/host.mjs';
import { OPS_CHANNEL, startWorld, type World } from './harness.js';
import { text } from './blocks.js';
import { card } from './faults.js';
import { FAKE_TEAM_DOMAIN } from '../world/fake-slack.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


async function status(w: World, n = 1) {
  await w.slash('status');
  const all = await w.slack.waitFor(() => {
    const found = w.slack.messagesIn(OPS_CHANNEL).filter((m) => text(m.blocks).includes('production: status'));
    return found.length >= n ? found : undefined;
  }, { timeoutMs: 20_000 });
  return text(all[n - 1]!.blocks);
}

describe('/engramia status', () => {
  it('shows the running version, the pin, the database revision, the containers and no lock', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const t = await status(w);
    expect(t).toContain('*Running*\\n`0.6.0`');
    expect(t).toContain('*Pinned in .env*\\n`0.6.0`');
    expect(t).toContain('*Database*\\n`031`');
    expect(t).toContain('*Maintenance*\\noff');
    expect(t).toMatch(/🟢 `engramia-api` running · `0\.6\.0`/);
    expect(t).toContain('Not locked');
  });

  it('a crash-looping API caught `running` by ps (as the real daemon shows it between restarts) is not reported as plainly running', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    crashLoop(w.deployPath, '0.6.0', undefined, { runningWindow: true });
    const t = await status(w);
    expect(t).toContain('*Running*\\n`0.6.0`\\n⚠️ the container is up but the API does not answer (HTTP 502): starting, or crash-looping');
    const msg = w.slack.messagesIn(OPS_CHANNEL).find((m) => text(m.blocks).includes('production: status'))!;
    expect(msg.text).toBe('production: running 0.6.0 (API not answering), maintenance off');
  });

  it('says which step a running deploy is on, with its thread', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setFault(w.deployPath, { match: ['pull', 'engramia-api'], delayMs: 5000 });
    await w.slash('deploy 0.6.1 --no-maintenance');
    await w.slack.waitFor(() => readCommandLog(w.deployPath).some((r: any) => r.argv.includes('pull')), { timeoutMs: 20_000 });
    await w.slack.waitFor(() => card(w), { timeoutMs: 10_000 });
    const t = await status(w);
    expect(t).toMatch(/▶️ \*Running\* step \d+ of \d+: Pull 0\.6\.1\. Follow it in <https:\/\/[^|]+\|its thread>/);
  });

  it('names the lock holder while a deploy waits, and warns when maintenance has been on too long', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { maintenanceWarnMinutes: 1 } }));
    await w.slash('deploy 0.6.1');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).some((m) => text(m.blocks).includes('maintenance.enable')), { timeoutMs: 20_000 });
    let t = await status(w);
    expect(t).toMatch(/Locked\* by deploy 0\.6\.1 \(<@U01ALICE>, \d+ s ago\), job `deploy-/);
    // Parked at the maintenance gate: the question it waits on, and a link to the card's thread.
    const deployCard = card(w)!;
    expect(t).toContain('⏸️ *Waiting at a gate*: “Enable maintenance mode for deploying 0.6.1 to production?” Answer in ');
    expect(t).toContain(`<https://${FAKE_TEAM_DOMAIN}.slack.com/archives/${OPS_CHANNEL}/p${deployCard.ts.replace('.', '')}|its thread>`);
    expect(t).toMatch(/takes the safe branch in (\d+ s|1\d min)/);
    expect(t).toContain('*Pinned in .env*\\n`0.6.0`');
    expect(t).toContain('*Database*\\n`031`');
    expect(w.slack.invalidBlockCalls()).toEqual([]);

    // Maintenance turned on an hour ago (as the bot records it), still on.
    setMaintenance(w.deployPath, true);
    await w.bot.producer!.store.setMaintenanceSince('production', new Date(Date.now() - 61 * 60_000).toISOString());
    t = await status(w, 2);
    expect(t).toMatch(/🚧 on for 6\d min/);
    expect(t).toContain('Maintenance has been on for');
    expect(t).toContain('longer than 1 min');
  });
});
