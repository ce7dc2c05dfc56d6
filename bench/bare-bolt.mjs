// The baseline of the ack benchmark (bench/ack.ts): a bare Bolt app whose `/engramia` handler only calls
// ack(), with the HTTPReceiver set up as the bot's (src/slack/app.ts): same signing secret, same
// `/slack/events` endpoint, same custom routes, processBeforeResponse false. auth.test runs once at start-up
// (Bolt's default for a single token; with tokenVerificationEnabled false Bolt 5 would call it on every
// request, which is why the bot brings its own cached authorize). Plain JavaScript on the same Node
// binary, as the bot runs from dist/, so neither side pays a loader.
// Environment: SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL. Output: one JSON line { port }.
import bolt from '@slack/bolt';

const { App, HTTPReceiver, LogLevel } = bolt;

const ok = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{}');
};
const receiver = new HTTPReceiver({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  endpoints: '/slack/events',
  // The bot's PORT serves only the public /healthz (/metrics is on its admin listener).
  customRoutes: [{ path: '/healthz', method: ['GET'], handler: ok }],
  processBeforeResponse: false,
  logLevel: LogLevel.INFO,
});
const app = new App({
  token: process.env.SLACK_BOT_TOKEN,
  receiver,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL },
  logLevel: LogLevel.INFO,
});
app.command('/engramia', async ({ ack }) => {
  await ack();
});
const server = await app.start(0);
process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
process.on('SIGTERM', () => {
  void app.stop().finally(() => process.exit(0));
});
