import { afterEach, describe, expect, it } from 'vitest';
import { readCommandLog, setDbRevision } from '../world/sim/host.mjs';
import { OPS_CHANNEL, startWorld, type World } from './harness.js';
import { text } from './blocks.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


async function result(w: World) {
  const m = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((x) => text(x.blocks).includes('database migrations')), { timeoutMs: 20_000 });
  return text(m.blocks);
}

describe('/engramia migrations', () => {
  it('shows the current revision, the head of the running image and the latest applied revisions', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const ack = await w.slash('migrations');
    expect(ack.body.text).toMatch(/Reading the migrations of production/);
    const t = await result(w);
    expect(t).toContain('*Current*\\n`031`');
    expect(t).toContain('*Head (0.6.0)*\\n`031`');
    expect(t).toContain('🟢 at head');
    expect(t).toMatch(/Applied \(newest first\):\*\\n• `031`/);
    expect(t).not.toContain('Not applied yet');
    // Read-only: alembic was only asked, in the running container, with its tag stated.
    const alembicCalls = readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('alembic'));
    expect(alembicCalls.map((r: any) => `${r.env.IMAGE_TAG} ${r.argv.slice(-1)[0]}`).sort()).toEqual(['0.6.0 current', '0.6.0 history']);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('lists the revisions the database is missing, across a gap in the numbering', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setDbRevision(w.deployPath, '006');
    await w.slash('migrations');
    const t = await result(w);
    expect(t).toContain('*Current*\\n`006`');
    expect(t).toMatch(/🟡 \d+ behind head/);
    // 007 does not exist: 008 follows 006.
    expect(t).toMatch(/Not applied yet:\*\\n• `008`/);
    expect(t).not.toContain('`007`');
  });
});
