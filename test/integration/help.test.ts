// `/engramia help` and mistyped subcommands: answered in the ack itself, nothing queued.
import { afterEach, describe, expect, it } from 'vitest';
import { SPECS } from '../../src/commands/specs.js';
import { validateBlocks } from '../world/fake-slack.js';
import { readCommandLog } from '../world/sim/host.mjs';
import { OPS_CHANNEL, startWorld, type World } from './harness.js';
import { blockText, type Block } from './blocks.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('/engramia help', () => {
  it('answers in the ack with valid Block Kit: usage, an example and who may run each command, from the config', async () => {
    const w = (world = await startWorld({ slackLimits: false, access: { deployers: ['U01ALICE', 'S0DEPLOYERS'], approvers: ['U02BOB'], admins: ['U03CAROL'] } }));
    const ack = await w.slash('help');
    expect(ack.status).toBe(200);
    const blocks = ack.body.blocks as Block[];
    expect(validateBlocks(blocks)).toEqual([]);
    expect(blocks.length).toBeLessThanOrEqual(50);
    for (const b of blocks) if (b.type === 'section' && b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);

    const t = blockText(blocks);
    for (const s of SPECS) {
      expect(t, s.name).toContain(`\`/engramia ${s.usage}\``);
      expect(t, s.name).toContain(`e.g. \`/engramia ${s.example}\``);
    }
    expect(t).toContain(`*Read-only*: anyone in <#${OPS_CHANNEL}>`);
    expect(t).toContain('*Change the host*: deployers (`access.deployers`): <@U01ALICE>, <!subteam^S0DEPLOYERS>');
    expect(t).toContain('admins (`access.admins`): <@U03CAROL>');
    expect(t).toContain('approvers (`access.approvers`): <@U02BOB>');
    expect(t).toMatch(/`\/engramia deploy VERSION[^`]*`\nRun the standard deployment of a release tag\.\ne\.g\. `\/engramia deploy 0\.6\.1 --maintenance` · 👤 deployers/);
    expect(t).toMatch(/`\/engramia unlock ENV`\n[^\n]+\ne\.g\. `\/engramia unlock production` · 👤 admins/);
    expect(t).toMatch(/`\/engramia logs \[ENV\] \[--tail N\]`\n[^\n]*at most 1000[^\n]*\ne\.g\. `\/engramia logs --tail 200` · 👤 anyone/);
    // Not a job: nothing reaches Slack's Web API or the host.
    await new Promise((r) => setTimeout(r, 300));
    expect(w.slack.callsTo('chat.postMessage')).toEqual([]);
    expect(readCommandLog(w.deployPath)).toEqual([]);
  });

  it.each([
    ['deplyo 0.6.1', 'deploy'],
    ['dpelyo 0.6.1', 'deploy'],
    ['stauts', 'status'],
    ['lgos --tail 5', 'logs'],
  ])('%j suggests `%s` and queues nothing', async (typed, near) => {
    const w = (world = await startWorld({ slackLimits: false }));
    const ack = await w.slash(typed);
    const t = blockText(ack.body.blocks as Block[]);
    expect(t).toContain(`Did you mean \`${near}\`?`);
    expect(validateBlocks(ack.body.blocks)).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.slack.callsTo('chat.postMessage')).toEqual([]);
    expect(readCommandLog(w.deployPath)).toEqual([]);
  });
});
