import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryFailure, Origin, Outbox, PostedRef } from '../jobs/types.js';
import type { Button, Msg } from '../render/model.js';
import { toText } from '../render/text.js';
import { scrub } from '../security/scrub.js';

/** A message that carries buttons: in the console its buttons are answered by number. */
export interface Question {
  ref: PostedRef;
  buttons: Button[];
  summary: string;
}

interface Shown {
  text: string;
  summary: string;
  threadTs: string | undefined;
  hadButtons: boolean;
}

export interface ConsoleOutboxOptions {
  /** Prints one block of text; the console redraws its prompt around it. */
  print(text: string): void;
  knownSecrets: readonly string[];
  /** Where uploaded files go; default a fresh directory under the OS temp dir, made on first use. */
  fileDir?: string;
}

const THREAD = '  │ ';

function buttonsOf(msg: Msg): Button[] {
  return msg.parts.flatMap((p) => (p.type === 'actions' ? p.buttons : []));
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/**
 * The console's transport: the same messages Slack gets, rendered by `toText`.
 * A terminal cannot edit what it printed, so an update prints again: the whole
 * message when its status (summary) or its buttons change, otherwise only the
 * lines that changed, so a card ticking through its steps stays readable.
 */
export class ConsoleOutbox implements Outbox {
  /** A terminal that failed to print will fail again: nothing is worth retrying. */
  classify(err: unknown): DeliveryFailure {
    return { transient: false, reason: err instanceof Error ? err.message : String(err) };
  }

  readonly #print: (text: string) => void;
  readonly #secrets: readonly string[];
  #fileDir: string | undefined;
  #seq = 0;
  readonly #shown = new Map<string, Shown>();
  /** Open questions, oldest first; a question closes when its message loses its buttons. */
  readonly #questions = new Map<string, Question>();

  constructor(opts: ConsoleOutboxOptions) {
    this.#print = opts.print;
    this.#secrets = opts.knownSecrets;
    this.#fileDir = opts.fileDir;
  }

  /** The newest question still waiting for an answer. */
  latestQuestion(): Question | undefined {
    return [...this.#questions.values()].at(-1);
  }

  openQuestions(): Question[] {
    return [...this.#questions.values()];
  }

  /** Prints a message meant for one person only (command answers, refused presses). */
  printEphemeral(msg: Msg): void {
    this.#print(this.#render(msg));
  }

  async post(origin: Origin, msg: Msg, opts: { threadTs?: string } = {}): Promise<PostedRef> {
    // Slack-like ts values keep anything that sorts or compares them working unchanged.
    const ts = `${Math.floor(Date.now() / 1000)}.${String(++this.#seq).padStart(6, '0')}`;
    const ref = { channel: origin.channel, ts };
    const text = this.#render(msg);
    const buttons = buttonsOf(msg);
    this.#shown.set(ts, { text, summary: msg.summary, threadTs: opts.threadTs, hadButtons: buttons.length > 0 });
    this.#track(ref, msg, buttons);
    this.#print(opts.threadTs ? indent(text, THREAD) : `\n── ${clock()} ${'─'.repeat(40)}\n${text}`);
    if (buttons.length > 0) this.#print(this.#hint(buttons));
    return ref;
  }

  async update(ref: PostedRef, msg: Msg): Promise<void> {
    const text = this.#render(msg);
    const before = this.#shown.get(ref.ts);
    const buttons = buttonsOf(msg);
    this.#shown.set(ref.ts, { text, summary: msg.summary, threadTs: before?.threadTs, hadButtons: buttons.length > 0 });
    this.#track(ref, msg, buttons);
    const prefix = before?.threadTs ? THREAD : '';
    if (!before || before.summary !== msg.summary || before.hadButtons !== buttons.length > 0) {
      this.#print(indent(`↻ ${clock()} updated:\n${text}`, prefix));
    } else {
      const old = new Set(before.text.split('\n'));
      const changed = text.split('\n').filter((l) => !old.has(l));
      if (changed.length === 0) return;
      const title = text.split('\n')[0] ?? '';
      this.#print(indent(`↻ ${clock()} ${title}\n${changed.map((l) => `  ${l.trimStart()}`).join('\n')}`, prefix));
    }
    if (buttons.length > 0) this.#print(this.#hint(buttons));
  }

  async upload(_origin: Origin, file: { threadTs?: string; filename: string; title: string; content: string }): Promise<void> {
    const content = scrub(file.content, this.#secrets);
    this.#fileDir ??= mkdtempSync(join(tmpdir(), 'engramia-console-'));
    mkdirSync(this.#fileDir, { recursive: true });
    // The name comes from the job; keep it to one plain path segment.
    const name = `${String(++this.#seq).padStart(3, '0')}-${file.filename.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80) || 'output.txt'}`;
    const path = join(this.#fileDir, name);
    writeFileSync(path, content, { mode: 0o600 });
    const lines = content.split('\n').length;
    const line = `📎 ${scrub(file.title, this.#secrets)}: ${lines} line${lines === 1 ? '' : 's'} saved to ${path}`;
    this.#print(file.threadTs ? indent(line, THREAD) : line);
  }

  async permalink(): Promise<string | undefined> {
    return undefined;
  }

  #render(msg: Msg): string {
    return scrub(toText(msg), this.#secrets);
  }

  #track(ref: PostedRef, msg: Msg, buttons: Button[]): void {
    // Re-inserted, so a question asked again counts as the newest.
    this.#questions.delete(ref.ts);
    if (buttons.length > 0) this.#questions.set(ref.ts, { ref, buttons, summary: msg.summary });
  }

  #hint(buttons: Button[]): string {
    return `  → type ${buttons.length === 1 ? '1' : `a number 1-${buttons.length}`} to answer (as the current user; /as USER to switch)`;
  }
}
