import type { Config } from '../config/load.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Producer } from '../jobs/queue.js';
import type { Origin } from '../jobs/types.js';
import { describeError, errorParts } from '../render/errors.js';
import { code, type Msg, type Part } from '../render/model.js';
import { parseCommand, type Command } from './grammar.js';
import { SPECS, specOf } from './specs.js';

export interface CommandRequest {
  text: string;
  origin: Origin;
}

export interface CommandDeps {
  config: Config;
  producer: Pick<Producer, 'enqueue'>;
  log: Logger;
  metrics?: Metrics;
}

export function helpMsg(): Msg {
  const lines = SPECS.map((s) => `${code(`/engramia ${s.usage}`)}\n      ${s.summary}${s.available ? '' : ' _(not available yet)_'}${s.mutating ? ' _(deployers)_' : ''}`);
  return {
    summary: 'Engramia ChatOps commands',
    parts: [
      { type: 'header', text: 'Engramia ChatOps' },
      { type: 'section', text: lines.join('\n') },
      { type: 'context', items: ['ENV may also be written `--env ENV`; without it the default environment is used.'] },
    ],
  };
}

function checkChannel(config: Config, origin: Origin): void {
  const allowed = config.slack.allowedChannels;
  if (origin.transport === 'console' || allowed.length === 0 || allowed.includes(origin.channel)) return;
  const dm = origin.channel.startsWith('D');
  throw new ChatOpsError(ErrorCode.ChannelNotAllowed, dm ? 'Commands are not accepted in direct messages.' : 'Commands are not accepted in this channel.', { allowed });
}

function checkRole(config: Config, command: Command, user: string): void {
  const spec = specOf(command.name);
  if (!spec.mutating) return;
  // User-group (S…) members are resolved by the access layer that comes with approvals; ids match directly here.
  const list = command.name === 'unlock' ? config.access.admins : [...config.access.deployers, ...config.access.admins];
  if (list.includes(user)) return;
  const who = command.name === 'unlock' ? 'admins (access.admins)' : 'deployers (access.deployers)';
  throw new ChatOpsError(ErrorCode.Forbidden, `You may not run \`${command.name}\`.`, { who: `Only ${who} may run it.` });
}

/** The fallback `text` is shown raw in notifications: strip the mrkdwn. */
function plainText(mrkdwn: string): string {
  return mrkdwn.replace(/[*`_]/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function reply(summary: string, parts: Part[], notes: string[] = []): Msg {
  return { summary, parts: [...notes.map((n): Part => ({ type: 'context', items: [`ℹ️ ${n}`] })), ...parts] };
}

/**
 * The transport-neutral command path: Slack's listener, the console and
 * buttons all come through here. It decides and enqueues; it never touches a host.
 */
export async function handleCommand(req: CommandRequest, deps: CommandDeps): Promise<Msg> {
  const log = deps.log.child({ user: req.origin.user, channel: req.origin.channel });
  let name = 'unknown';
  try {
    checkChannel(deps.config, req.origin);
    const { command, notes } = parseCommand(req.text, { envNames: Object.keys(deps.config.environments), defaultEnv: deps.config.defaultEnv });
    name = command.name;
    if (command.name === 'help') {
      deps.metrics?.commands.inc({ command: name, outcome: 'ok' });
      return helpMsg();
    }
    checkRole(deps.config, command, req.origin.user);
    if (!specOf(command.name).available || (command.name !== 'health' && command.name !== 'version')) {
      deps.metrics?.commands.inc({ command: name, outcome: 'unavailable' });
      return reply(`${command.name} is not available yet`, [{ type: 'section', text: `🚧 \`${command.name}\` is not available in this version of the bot yet. Nothing was queued.` }], notes);
    }
    const { jobId } = await deps.producer.enqueue({ kind: command.name, env: command.env, origin: req.origin, requestedAt: new Date().toISOString() });
    log.info({ command: command.name, env: command.env, jobId }, 'command queued');
    deps.metrics?.commands.inc({ command: name, outcome: 'queued' });
    const what = command.name === 'health' ? 'Checking health of' : 'Checking the version on';
    return reply(`${what} ${command.env} (job ${jobId})`, [{ type: 'section', text: `⏳ ${what} *${command.env}*… (job ${code(jobId)})` }], notes);
  } catch (err) {
    const error = asChatOpsError(err);
    if (error.code === ErrorCode.Internal) log.error({ err: error.message, text: req.text.slice(0, 200) }, 'command failed');
    else log.info({ code: error.code }, 'command refused');
    deps.metrics?.commands.inc({ command: name, outcome: error.code.toLowerCase() });
    return reply(plainText(describeError(error).title), errorParts(error));
  }
}
