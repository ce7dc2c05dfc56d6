// Read-only answers under Slack's own rate limits: a burst of commands to one channel is held to
// about one post a second, so later answers must wait for their turn instead of being lost.
import { afterEach, describe, expect, it } from 'vitest';
import { OPS_CHANNEL, startWorld, type World } from './harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('answers under the channel rate limit', { timeout: 60_000 }, () => {
  it('ten health checks at once: every answer is posted, some after a 429, none lost', async () => {
    // Without the bot's Slack pacer, so the channel limit answers 429s and the retry is what gets every answer
    // through; with it (the default) the answers wait for their slot and meet no 429 (slack-budget.test.ts).
    const w = (world = await startWorld({ slackPacing: false }));
    const acks = await Promise.all(Array.from({ length: 10 }, (_, i) => w.slash('health', { trigger_id: `burst-${i}` })));
    for (const ack of acks) expect(ack.status).toBe(200);
    const answered = () => w.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === OPS_CHANNEL && c.response?.ok === true && /production: /.test(String(c.args.text ?? '')));
    await w.slack.waitFor(() => answered().length >= 10, { timeoutMs: 45_000, description: 'ten health answers' });
    expect(answered()).toHaveLength(10);
    // The channel limit did push back: the answers got through by waiting, not because nothing was limited.
    expect(w.slack.rateLimited()).toBeGreaterThan(0);
    expect(w.logs.join('')).not.toMatch(/"msg":"job failed"/);
  });
});
