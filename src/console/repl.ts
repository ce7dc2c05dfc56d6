import { createInterface, type Interface } from 'node:readline';
import type { Config } from '../config/load.js';
import { handleAction, handleTypedConfirm, type ActionDeps } from '../commands/actions.js';
import { handleCommand } from '../commands/handle.js';
import { handleFixPress, isFixAction } from '../commands/fixes.js';
import type { Origin } from '../jobs/types.js';
import type { Msg } from '../render/model.js';
import { toText } from '../render/text.js';
import type { ConsoleOutbox } from './outbox.js';

export const CONSOLE_CHANNEL = 'CONSOLE';

/** A user id as Slack writes them, or a plain name for people who only use the console. */
const USER_ID = /^[A-Za-z0-9._-]{1,40}$/;

export function isConsoleUser(id: string): boolean {
  return USER_ID.test(id);
}

export interface ReplDeps extends ActionDeps {
  outbox: ConsoleOutbox;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  user: string;
  /** This console's id: jobs it requests carry it, so four-eyes knows `/as` is still the same person. */
  session: string;
  /** The operating-system user running the console, for the audit. */
  osUser: string;
}

export interface Repl {
  /** Prints above the prompt, keeping what the person is typing. */
  print(text: string): void;
  /** Resolves when the person leaves: `exit`, or the end of input. */
  readonly ended: Promise<'exit' | 'eof'>;
  /** Called on Ctrl-C at the prompt (a terminal in raw mode gets no SIGINT). */
  onInterrupt(fn: () => void): void;
  close(): void;
}

/** What the console is waiting for when the next line is not a command. */
type Pending =
  | { kind: 'are-you-sure'; press: () => Promise<void> }
  | { kind: 'confirm-modal'; privateMetadata: string }
  | { kind: 'typed'; privateMetadata: string; expected: string };

export function roleNames(config: Config, user: string): string[] {
  const { deployers, approvers, admins } = config.access;
  return [deployers.includes(user) ? 'deployer' : '', approvers.includes(user) ? 'approver' : '', admins.includes(user) ? 'admin' : ''].filter(Boolean);
}

export const CONSOLE_HELP = [
  'Type the same commands as in Slack, with or without "/engramia": e.g. `/engramia health`, `deploy 0.6.1`, `help`.',
  'A question shows numbered choices ([1] … [2] …): type the number to answer the newest one.',
  '`/as USER` acts as another user (e.g. `/as U02BOB`), `/whoami` says who you are, `exit` (or Ctrl-D) leaves.',
].join('\n');

/**
 * The console's input side: each line goes to `handleCommand`, and a number to
 * `handleAction`, exactly as Slack's listeners call them; only the transport differs.
 */
export function startRepl(deps: ReplDeps): Repl {
  let user = deps.user;
  let pending: Pending | undefined;
  const terminal = Boolean((deps.input as { isTTY?: boolean }).isTTY && (deps.output as { isTTY?: boolean }).isTTY);
  const rl: Interface = createInterface({ input: deps.input, output: deps.output, terminal, historySize: terminal ? 200 : 0 });
  const promptText = () => (pending ? '? ' : `engramia (${user})> `);
  let closed = false;

  const print = (text: string) => {
    if (!terminal) {
      deps.output.write(`${text}\n`);
      return;
    }
    // Async output (a job's progress) arrives while someone types: print above the prompt, then redraw it.
    deps.output.write(`\r\x1b[K${text}\n`);
    if (closed) return;
    rl.setPrompt(promptText());
    rl.prompt(true);
  };
  const say = (msg: Msg) => deps.outbox.printEphemeral(msg);
  const prompt = () => {
    if (!terminal || closed) return;
    rl.setPrompt(promptText());
    rl.prompt(true);
  };

  const origin = (): Origin => ({ transport: 'console', channel: CONSOLE_CHANNEL, user, session: deps.session, osUser: deps.osUser });
  const presser = () => ({ user, transport: 'console' as const, session: deps.session, osUser: deps.osUser });

  const press = async (button: { actionId: string; value: string }, ts: string): Promise<void> => {
    if (isFixAction(button.actionId)) {
      // A diagnosis's fix button is the command it names, typed by whoever presses it: same path as in Slack.
      say(await handleFixPress({ actionId: button.actionId, value: button.value, origin: origin() }, (text, o) => handleCommand({ text, origin: o }, deps)));
      return;
    }
    const result = await handleAction({ actionId: button.actionId, value: button.value, ...presser(), channel: CONSOLE_CHANNEL, messageTs: ts }, deps);
    if (result.replace) await deps.outbox.update({ channel: CONSOLE_CHANNEL, ts }, result.replace);
    if (result.ephemeral) say(result.ephemeral);
    const m = result.modal;
    if (m?.expected !== undefined) {
      print(`${m.title}: ${m.prompt}\n(type it below; an empty line cancels)`);
      pending = { kind: 'typed', privateMetadata: m.privateMetadata, expected: m.expected };
    } else if (m) {
      print(`${m.title}: ${m.prompt}\nType y to ${m.confirm.toLowerCase()}, anything else to ${m.deny.toLowerCase()}.`);
      pending = { kind: 'confirm-modal', privateMetadata: m.privateMetadata };
    }
  };

  const answer = async (n: number): Promise<void> => {
    const q = deps.outbox.latestQuestion();
    if (!q) {
      print('No question is waiting for an answer.');
      return;
    }
    const button = q.buttons[n - 1];
    if (!button) {
      print(`Choose 1-${q.buttons.length} for: ${q.summary}`);
      return;
    }
    if (button.confirm) {
      // Slack asks this before the press is even sent; so does the console.
      print(`${button.confirm.title}\n${toText({ summary: '', parts: [{ type: 'section', text: button.confirm.text }] })}\nType y to ${button.confirm.confirm.toLowerCase()}, anything else to ${button.confirm.deny.toLowerCase()}.`);
      pending = { kind: 'are-you-sure', press: () => press(button, q.ref.ts) };
      return;
    }
    await press(button, q.ref.ts);
  };

  const onPending = async (p: Pending, text: string): Promise<void> => {
    pending = undefined;
    if (p.kind === 'are-you-sure') {
      if (/^y(es)?$/i.test(text)) await p.press();
      else print('Not sent: nothing was done.');
      return;
    }
    if (p.kind === 'confirm-modal' && !/^y(es)?$/i.test(text)) {
      print('Not confirmed: nothing was done.');
      return;
    }
    if (text === '') {
      print('Cancelled: nothing was done.');
      return;
    }
    const r = await handleTypedConfirm({ privateMetadata: p.privateMetadata, typed: p.kind === 'typed' ? text : '', ...presser() }, deps);
    if (r.error) {
      print(`${r.error} (An empty line cancels.)`);
      pending = p;
    }
    if (r.replace) await deps.outbox.update({ channel: r.replace.channel, ts: r.replace.ts }, r.replace.msg);
    if (r.ephemeral) say(r.ephemeral.msg);
  };

  const handleLine = async (raw: string): Promise<'exit' | undefined> => {
    const text = raw.trim();
    if (pending) {
      await onPending(pending, text);
      return undefined;
    }
    if (text === '' || text.startsWith('#')) return undefined;
    if (/^\/?(exit|quit)$/i.test(text)) return 'exit';
    const as = /^\/?as(?:\s+(\S+))?$/i.exec(text);
    if (as) {
      const next = as[1];
      if (!next || !isConsoleUser(next)) {
        print('Usage: /as USER   (a user id such as U02BOB, as the config\'s access lists name them)');
        return undefined;
      }
      user = next;
      const roles = roleNames(deps.config, user);
      print(`Now acting as ${user}${roles.length ? ` (${roles.join(', ')})` : ' (no role in access: read-only commands only)'}.`);
      return undefined;
    }
    if (/^\/?whoami$/i.test(text)) {
      const roles = roleNames(deps.config, user);
      print(`You are ${user}${roles.length ? ` (${roles.join(', ')})` : ' (no role in access)'}.`);
      return undefined;
    }
    if (/^\d{1,2}$/.test(text)) {
      await answer(Number(text));
      return undefined;
    }
    const command = text.replace(/^\/engramia(?:\s+|$)/i, '');
    if (command.startsWith('/')) {
      print(`Unknown command ${command.split(/\s/)[0]}. ${CONSOLE_HELP.split('\n')[2]}`);
      return undefined;
    }
    say(await handleCommand({ text: command, origin: origin() }, deps));
    return undefined;
  };

  let resolveEnded!: (how: 'exit' | 'eof') => void;
  const ended = new Promise<'exit' | 'eof'>((r) => (resolveEnded = r));
  // Lines are handled one at a time, in order: `/as U02BOB` then `1` must press as Bob.
  let chain = Promise.resolve();
  let leaving = false;
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      if (leaving) return;
      try {
        if ((await handleLine(line)) === 'exit') {
          leaving = true;
          resolveEnded('exit');
          return;
        }
      } catch (err) {
        print(`Something went wrong handling that line: ${(err as Error).message}`);
      }
      prompt();
    });
  });
  rl.on('close', () => {
    closed = true;
    void chain.then(() => resolveEnded('eof'));
  });
  let interrupt: (() => void) | undefined;
  rl.on('SIGINT', () => (interrupt ? interrupt() : rl.close()));
  prompt();

  return {
    print,
    ended,
    onInterrupt: (fn) => {
      interrupt = fn;
    },
    close: () => {
      leaving = true;
      rl.close();
    },
  };
}
