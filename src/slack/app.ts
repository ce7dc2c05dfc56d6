import { App, HTTPReceiver, LogLevel, SocketModeReceiver, type Logger as BoltLogger } from '@slack/bolt';
import { WebClient } from '@slack/web-api';
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SlackMode } from '../config/env.js';
import type { Logger } from '../logger.js';
import type { Msg } from '../render/model.js';
import { toSlackMessage } from '../render/slack.js';
import type { Origin } from '../jobs/types.js';
import {
  TYPED_CONFIRM_ACTION,
  TYPED_CONFIRM_BLOCK,
  TYPED_CONFIRM_CALLBACK,
  type ActionRequest,
  type ActionResult,
  type TypedConfirmResult,
  type TypedConfirmSubmission,
} from '../commands/actions.js';
import { handleFixPress } from '../commands/fixes.js';

export interface SlackAppDeps {
  mode: Extract<SlackMode, { kind: 'http' | 'socket' }>;
  slackApiUrl: string;
  port: number;
  log: Logger;
  /** The neutral command path; this module only moves bytes between Slack and it. */
  onCommand(text: string, origin: Origin): Promise<Msg>;
  onAction(req: ActionRequest): Promise<ActionResult>;
  onTypedConfirm(sub: TypedConfirmSubmission): Promise<TypedConfirmResult>;
  /** The public verdict only ({"status":"ok"} / 503): /metrics and the details live on the admin listener. */
  healthz(): Promise<{ httpStatus: number; body: unknown }>;
}

const SOCKET_START_TIMEOUT_MS = 30_000;

export interface RunningSlackApp {
  app: App;
  port: number;
  stop(): Promise<void>;
}

function boltLogger(log: Logger): BoltLogger {
  const l = log.child({ component: 'bolt' });
  let level = LogLevel.INFO;
  return {
    debug: (...m: unknown[]) => l.debug(m.map(String).join(' ')),
    info: (...m: unknown[]) => l.info(m.map(String).join(' ')),
    warn: (...m: unknown[]) => l.warn(m.map(String).join(' ')),
    error: (...m: unknown[]) => l.error(m.map(String).join(' ')),
    setLevel: (lv: LogLevel) => {
      level = lv;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

/**
 * Transport only: Bolt receives, verifies and acks; everything the bot decides
 * happens in `onCommand`. The answer goes back in the ack itself, the fastest
 * path to the user and one that needs no extra Slack call.
 */
export async function startSlackApp(deps: SlackAppDeps): Promise<RunningSlackApp> {
  const logger = boltLogger(deps.log);
  const routes = [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req: IncomingMessage, res: ServerResponse) => {
        void deps.healthz().then(
          ({ httpStatus, body }) => {
            res.writeHead(httpStatus, { 'content-type': 'application/json' });
            res.end(JSON.stringify(body));
          },
          () => {
            res.writeHead(503, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ status: 'error' }));
          },
        );
      },
    },
  ];

  let receiver: HTTPReceiver | SocketModeReceiver;
  if (deps.mode.kind === 'http') {
    receiver = new HTTPReceiver({
      signingSecret: deps.mode.signingSecret.reveal(),
      endpoints: '/slack/events',
      customRoutes: routes,
      processBeforeResponse: false,
      logger,
    });
  } else {
    // installerOptions.clientOptions is what Bolt hands to the SocketModeClient's own WebClient (the one that
    // calls apps.connections.open with the app token); without it that client always uses https://slack.com/api/.
    receiver = new SocketModeReceiver({
      appToken: deps.mode.appToken.reveal(),
      customRoutes: routes,
      installerOptions: { port: deps.port, clientOptions: { slackApiUrl: deps.slackApiUrl } },
      logger,
    });
  }

  // Bolt would otherwise call auth.test before every request it handles, inside Slack's 3 s ack window.
  const botToken = deps.mode.botToken.reveal();
  const authClient = new WebClient(botToken, { slackApiUrl: deps.slackApiUrl, retryConfig: { retries: 1 } });
  let ids: { botId?: string; botUserId?: string } | undefined;
  const authorize = async () => {
    if (!ids) {
      try {
        const r = await authClient.auth.test();
        ids = { ...(r.bot_id ? { botId: r.bot_id } : {}), ...(r.user_id ? { botUserId: r.user_id } : {}) };
      } catch (err) {
        deps.log.warn({ err: (err as Error).message }, 'auth.test failed; handling the request with the token alone');
        return { botToken };
      }
    }
    return { botToken, ...ids };
  };
  const app = new App({
    authorize,
    receiver,
    logger,
    tokenVerificationEnabled: false,
    clientOptions: { slackApiUrl: deps.slackApiUrl },
  });

  app.command('/engramia', async ({ command, ack }) => {
    const origin: Origin = {
      transport: 'slack',
      channel: command.channel_id,
      user: command.user_id,
      responseUrl: command.response_url,
      ...(command.trigger_id ? { requestId: command.trigger_id } : {}),
    };
    const msg = await deps.onCommand(command.text ?? '', origin);
    await ack({ response_type: 'ephemeral', ...toSlackMessage(msg) });
  });

  app.action(/^(deploy|maintenance|downgrade|rollback|step)\.[a-z]+$/, async ({ ack, body, action, client }) => {
    await ack();
    if (body.type !== 'block_actions' || action.type !== 'button' || !('action_id' in action)) return;
    const channel = body.channel?.id ?? body.container?.channel_id ?? '';
    const ts = body.message?.ts ?? body.container?.message_ts;
    const result = await deps.onAction({ actionId: action.action_id, value: action.value ?? '', user: body.user.id, channel, transport: 'slack', ...(ts ? { messageTs: ts } : {}) });
    if (result.modal) {
      const m = result.modal;
      await client.views
        .open({
          trigger_id: body.trigger_id,
          view: {
            type: 'modal',
            callback_id: m.callbackId,
            private_metadata: m.privateMetadata,
            title: { type: 'plain_text', text: m.title.slice(0, 24) },
            submit: { type: 'plain_text', text: m.confirm.slice(0, 24) },
            close: { type: 'plain_text', text: m.deny.slice(0, 24) },
            blocks: [
              { type: 'section', text: { type: 'mrkdwn', text: m.prompt } },
              ...(m.expected !== undefined
                ? [{ type: 'input' as const, block_id: TYPED_CONFIRM_BLOCK, label: { type: 'plain_text' as const, text: 'Environment name' }, element: { type: 'plain_text_input' as const, action_id: TYPED_CONFIRM_ACTION } }]
                : []),
            ],
          },
        })
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not open the confirmation dialog'));
    }
    if (result.replace && ts) {
      await client.chat.update({ channel, ts, ...toSlackMessage(result.replace) }).catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not update gate message'));
    }
    if (result.ephemeral) {
      await client.chat
        .postEphemeral({ channel, user: body.user.id, ...(body.message?.thread_ts ? { thread_ts: body.message.thread_ts } : {}), ...toSlackMessage(result.ephemeral) })
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not answer a button press'));
    }
  });

  // A diagnosis's fix buttons re-enter the slash command's path as the command they name, typed by the presser.
  app.action(/^fix\.[a-z_]+$/, async ({ ack, body, action, client }) => {
    await ack();
    if (body.type !== 'block_actions' || action.type !== 'button' || !('action_id' in action)) return;
    const channel = body.channel?.id ?? body.container?.channel_id ?? '';
    const origin: Origin = {
      transport: 'slack',
      channel,
      user: body.user.id,
      ...(body.response_url ? { responseUrl: body.response_url } : {}),
      ...(body.trigger_id ? { requestId: body.trigger_id } : {}),
    };
    const msg = await handleFixPress({ actionId: action.action_id, value: action.value ?? '', origin }, deps.onCommand);
    await client.chat
      .postEphemeral({ channel, user: body.user.id, ...toSlackMessage(msg) })
      .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not answer a fix button'));
  });

  app.view(TYPED_CONFIRM_CALLBACK, async ({ ack, body, view, client }) => {
    const typed = view.state.values[TYPED_CONFIRM_BLOCK]?.[TYPED_CONFIRM_ACTION]?.value ?? '';
    const r = await deps.onTypedConfirm({ privateMetadata: view.private_metadata ?? '', typed, user: body.user.id, transport: 'slack' });
    if (r.error) {
      await ack({ response_action: 'errors', errors: { [TYPED_CONFIRM_BLOCK]: r.error } });
      return;
    }
    await ack();
    if (r.replace) {
      await client.chat
        .update({ channel: r.replace.channel, ts: r.replace.ts, ...toSlackMessage(r.replace.msg) })
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not update gate message'));
    }
    if (r.ephemeral) {
      await client.chat
        .postEphemeral({ channel: r.ephemeral.channel, user: body.user.id, ...toSlackMessage(r.ephemeral.msg) })
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not answer a confirmation'));
    }
  });

  app.error(async (err) => {
    deps.log.error({ err: err.message, code: (err as { code?: string }).code }, 'bolt error');
  });

  let port = deps.port;
  if (deps.mode.kind === 'http') {
    const server = (await app.start(deps.port)) as Server;
    port = (server.address() as AddressInfo).port;
  } else {
    // The Socket Mode client retries a failed connection for a long time; at start-up that would look like a hang.
    let timer: NodeJS.Timeout | undefined;
    try {
      const starting = app.start();
      starting.catch(() => undefined);
      await Promise.race([
        starting,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no Socket Mode connection within ${SOCKET_START_TIMEOUT_MS / 1000} s: check SLACK_APP_TOKEN and that ${deps.slackApiUrl} is reachable`)), SOCKET_START_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      await app.stop().catch(() => undefined);
      const e = err as { data?: { error?: string }; message?: string };
      throw new Error(`Slack Socket Mode start failed: ${e.data?.error ? `${e.data.error} (check SLACK_APP_TOKEN)` : (e.message ?? String(err))}`);
    } finally {
      clearTimeout(timer);
    }
  }
  deps.log.info({ port, mode: deps.mode.kind }, 'slack app listening');
  return {
    app,
    port,
    async stop() {
      await app.stop();
    },
  };
}
