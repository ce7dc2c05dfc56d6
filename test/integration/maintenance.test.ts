import { afterEach, describe, expect, it } from 'vitest';
import { readCommandLog, readEnvFile, readState, setApi } from '../world/sim/host.mjs';
import { OPS_CHANNEL, startWorld, type World } from './harness.js';
import { text } from './blocks.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


async function done(w: World, title: string, n: number) {
  return w.slack.waitFor(
    () => {
      const finished = w.slack.messagesIn(OPS_CHANNEL).filter((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes(title) && /succeeded|failed/.test(text(m.blocks)));
      return finished.length >= n ? finished : undefined;
    },
    { timeoutMs: 20_000, description: `${n} finished "${title}" cards` },
  );
}

describe('/engramia maintenance on|off', () => {
  it('twice on gives one .env line and one re-create; twice off removes it; the API answers accordingly', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('maintenance on');
    const [first] = await done(w, 'Maintenance on for production', 1);
    expect(text(first!.blocks)).toContain('/v1/version answers 503 maintenance');
    await w.slash('maintenance on');
    const cards = await done(w, 'Maintenance on for production', 2);
    expect(text(cards[1]!.blocks)).toContain('already on: nothing changed');
    expect(readEnvFile(w.deployPath).match(/^ENGRAMIA_MAINTENANCE=.*$/gm)).toEqual(['ENGRAMIA_MAINTENANCE=true']);
    // Re-created once, on the version that was running, with the tag stated.
    const ups = readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('up'));
    expect(ups.map((r: any) => `${r.env.IMAGE_TAG} ${r.argv.join(' ')}`)).toEqual(['0.6.0 compose -f docker-compose.prod.yml up -d engramia-api']);
    expect(readState(w.deployPath).containers['engramia-api']?.env.ENGRAMIA_MAINTENANCE).toBe('true');
    expect(await w.bot.producer!.store.maintenanceSince('production')).toMatch(/^\d{4}-/);

    await w.slash('maintenance off');
    const [off] = await done(w, 'Maintenance off for production', 1);
    expect(text(off!.blocks)).toContain('/v1/version answers 200 0.6.0');
    await w.slash('maintenance off');
    await done(w, 'Maintenance off for production', 2);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('up'))).toHaveLength(2);
    expect(await w.bot.producer!.store.maintenanceSince('production')).toBeUndefined();
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('waits for a re-created container to answer before reporting (Caddy answers 502 while it starts, as on the real host)', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setApi(w.deployPath, { startupMs: 2500 });
    await w.slash('maintenance on');
    const [card] = await done(w, 'Maintenance on for production', 1);
    expect(text(card!.blocks)).toContain('/v1/version answers 503 maintenance');
    expect(text(card!.blocks)).not.toContain('which is not what maintenance on should give');
  });

  it('is for deployers only', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const ack = await w.slash('maintenance on', { user_id: 'U02BOB' });
    expect(text(ack.body.blocks)).toContain('You may not run `maintenance`');
    await new Promise((r) => setTimeout(r, 300));
    expect(readCommandLog(w.deployPath)).toEqual([]);
  });
});
