import { z } from 'zod';
import { DOCKER_TAG } from '../config/schema.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { SPECS, specOf, type CommandName } from './specs.js';

export type Command =
  | { name: 'help' }
  | { name: 'health'; env: string }
  | { name: 'version'; env: string }
  | { name: 'deploy'; version: string; env: string; maintenance: boolean | undefined; dryRun: boolean }
  | { name: 'rollback'; version: string | undefined; env: string; dryRun: boolean }
  | { name: 'maintenance'; state: 'on' | 'off'; env: string }
  | { name: 'migrations'; env: string }
  /** `target` "head" is `migrate upgrade`; anything else a downgrade target. */
  | { name: 'migrate'; target: string; env: string }
  | { name: 'status'; env: string }
  | { name: 'logs'; env: string; tail: number }
  | { name: 'diagnose'; env: string }
  | { name: 'history'; env: string }
  | { name: 'cancel'; job: string | undefined }
  | { name: 'unlock'; env: string };

export interface ParseContext {
  envNames: readonly string[];
  defaultEnv: string | undefined;
}

export interface Parsed {
  command: Command;
  /** Things the bot changed about the input and must say so, e.g. a dropped leading "v". */
  notes: string[];
}

export const MAX_TEXT = 500;
export const LOG_TAIL_DEFAULT = 100;
export const LOG_TAIL_MAX = 1000;
const REVISION = /^[A-Za-z0-9_]{1,32}$/;
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
const PRINTABLE = /^[\x21-\x7e]+$/;

function invalid(name: CommandName | undefined, message: string): ChatOpsError {
  return new ChatOpsError(ErrorCode.CommandInvalid, message, name ? { command: name, usage: `/engramia ${specOf(name).usage}` } : { usage: '/engramia help' });
}

/** Shows a token in a message without letting a 10 kB argument or control characters through. */
function shown(token: string): string {
  const safe = token.replace(/[^\x20-\x7e]/g, '?');
  return safe.length > 40 ? `${safe.slice(0, 40)}…` : safe;
}

/**
 * Damerau-Levenshtein distance (optimal string alignment), for "did you mean" on a mistyped
 * subcommand: a swapped pair of letters, the commonest typo ("deplyo"), counts as one edit.
 */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

export function suggest(word: string): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const s of SPECS) {
    const d = distance(word.toLowerCase(), s.name);
    if (d <= 2 && (!best || d < best.d)) best = { name: s.name, d };
  }
  return best?.name;
}

/**
 * Splits on whitespace. Quotes are not special: nothing here ever needs a
 * space inside an argument, and every argument is validated by its own pattern.
 * Dashes that Slack clients "smarten" (— and –) are read as "--".
 */
function tokenize(text: string): string[] {
  return text
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '')
    .map((t) => t.replace(/^[\u2014\u2013]/, '--'));
}

/**
 * The shape every parsed command must have, checked after parsing as a second,
 * independent gate: nothing reaches the queue that this schema does not accept.
 */
function buildCommandSchema(envNames: readonly string[]) {
  const env = z.string().refine((e) => envNames.includes(e), 'unknown environment');
  const version = z.string().regex(DOCKER_TAG);
  return z.discriminatedUnion('name', [
    z.strictObject({ name: z.literal('help') }),
    z.strictObject({ name: z.enum(['health', 'version', 'migrations', 'status', 'diagnose', 'history', 'unlock']), env }),
    z.strictObject({ name: z.literal('deploy'), version, env, maintenance: z.boolean().optional(), dryRun: z.boolean() }),
    z.strictObject({ name: z.literal('rollback'), version: version.optional(), env, dryRun: z.boolean() }),
    z.strictObject({ name: z.literal('maintenance'), state: z.enum(['on', 'off']), env }),
    z.strictObject({ name: z.literal('migrate'), target: z.union([z.enum(['-1', 'base']), z.string().regex(REVISION)]), env }),
    z.strictObject({ name: z.literal('logs'), env, tail: z.number().int().min(1).max(LOG_TAIL_MAX) }),
    z.strictObject({ name: z.literal('cancel'), job: z.string().regex(JOB_ID).optional() }),
  ]);
}

// Building the schema, and zod's compiling it on first use, cost 0.5 ms of CPU or more: on every slash command
// that was most of the ack's own work, and under a burst it queued every other command behind it.
const schemas = new Map<string, ReturnType<typeof buildCommandSchema>>();
function commandSchema(envNames: readonly string[]) {
  const key = envNames.join('\n');
  let schema = schemas.get(key);
  if (!schema) {
    // Environment lists come from config, so there are one or two; the bound only guards against a caller that varies them.
    if (schemas.size >= 16) schemas.clear();
    schema = buildCommandSchema([...envNames]);
    schemas.set(key, schema);
  }
  return schema;
}

export function parseCommand(text: string, ctx: ParseContext): Parsed {
  const parsed = parseTokens(text, ctx);
  const checked = commandSchema(ctx.envNames).safeParse(parsed.command);
  if (!checked.success) {
    throw invalid(parsed.command.name === 'help' ? undefined : parsed.command.name, `The command did not pass validation (${checked.error.issues[0]?.message ?? 'invalid'}).`);
  }
  return parsed;
}

function parseTokens(text: string, ctx: ParseContext): Parsed {
  if (text.length > MAX_TEXT) throw invalid(undefined, `The command is ${text.length} characters long; the longest valid command is far shorter (limit ${MAX_TEXT}).`);
  const tokens = tokenize(text);
  const notes: string[] = [];
  const word = tokens.shift()?.toLowerCase();
  if (word === undefined || word === 'help' || word === '--help' || word === '-h') {
    if (tokens.length > 0 && word !== undefined) throw invalid('help', `\`help\` takes no arguments, got "${shown(tokens[0]!)}".`);
    return { command: { name: 'help' }, notes };
  }
  const spec = SPECS.find((s) => s.name === word);
  if (!spec) {
    const near = suggest(word);
    throw invalid(undefined, `Unknown command "${shown(word)}".${near ? ` Did you mean \`${near}\`?` : ''} Try \`/engramia help\`.`);
  }
  const name = spec.name;

  // Flags first, so positional arguments are what remains.
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  const valueFlags = new Set(['--env', '--tail']);
  const boolFlags: Partial<Record<CommandName, string[]>> = {
    deploy: ['--maintenance', '--no-maintenance', '--dry-run'],
    rollback: ['--dry-run'],
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!t.startsWith('--') || t === '--') {
      positional.push(t);
      continue;
    }
    const eq = t.indexOf('=');
    const flag = eq === -1 ? t : t.slice(0, eq);
    const allowedHere = flag === '--env' || (flag === '--tail' && name === 'logs') || (boolFlags[name] ?? []).includes(flag);
    if (!allowedHere) throw invalid(name, `Unknown option "${shown(flag)}" for \`${name}\`.`);
    if (flags.has(flag)) throw invalid(name, `Option ${flag} is given twice.`);
    if (valueFlags.has(flag)) {
      const value = eq === -1 ? tokens[++i] : t.slice(eq + 1);
      if (value === undefined || value === '' || value.startsWith('--')) throw invalid(name, `Option ${flag} needs a value.`);
      flags.set(flag, value);
    } else {
      if (eq !== -1) throw invalid(name, `Option ${flag} takes no value.`);
      flags.set(flag, true);
    }
  }

  const isEnv = (t: string) => ctx.envNames.includes(t);
  const takeEnv = (allowPositional: boolean): string => {
    const fromFlag = flags.get('--env');
    let fromPos: string | undefined;
    if (allowPositional && positional.length > 0 && isEnv(positional[positional.length - 1]!)) fromPos = positional.pop();
    if (typeof fromFlag === 'string' && fromPos !== undefined && fromFlag !== fromPos) {
      throw invalid(name, `Two environments given: "${shown(fromPos)}" and --env "${shown(fromFlag)}".`);
    }
    const env = (typeof fromFlag === 'string' ? fromFlag : undefined) ?? fromPos;
    if (env !== undefined) {
      if (!isEnv(env)) {
        throw new ChatOpsError(ErrorCode.EnvUnknown, `Unknown environment "${shown(env)}".`, { known: [...ctx.envNames], usage: `/engramia ${spec.usage}` });
      }
      return env;
    }
    if (ctx.defaultEnv === undefined) throw invalid(name, `Name an environment: no environment is marked \`default: true\` (known: ${ctx.envNames.join(', ')}).`);
    return ctx.defaultEnv;
  };
  const noMore = () => {
    if (positional.length > 0) {
      const extra = positional[0]!;
      const hint = PRINTABLE.test(extra) && /^[a-z][a-z0-9_-]*$/.test(extra) ? ` If it is an environment, known ones are: ${ctx.envNames.join(', ')}.` : '';
      throw invalid(name, `Unexpected argument "${shown(extra)}".${hint}`);
    }
  };
  const version = (raw: string): string => {
    let v = raw;
    if (/^[vV]\d+\.\d+(\.\d+)?([-+.].*)?$/.test(v)) {
      v = v.slice(1);
      notes.push(`Using tag \`${v}\`: the leading "v" of "${shown(raw)}" was dropped (image tags have none).`);
    }
    if (!DOCKER_TAG.test(v)) {
      throw invalid(name, `"${shown(raw)}" is not a valid image tag: use letters, digits, ".", "_" and "-", starting with a letter, digit or "_", at most 128 characters (e.g. 0.6.1).`);
    }
    return v;
  };

  switch (name) {
    case 'help':
      return { command: { name }, notes };
    case 'health':
    case 'version':
    case 'migrations':
    case 'status':
    case 'diagnose':
    case 'history': {
      const env = takeEnv(true);
      noMore();
      return { command: { name, env }, notes };
    }
    case 'deploy': {
      const env = takeEnv(true);
      const raw = positional.shift();
      if (raw === undefined) throw invalid(name, '`deploy` needs the version to deploy.');
      const v = version(raw);
      noMore();
      if (flags.has('--maintenance') && flags.has('--no-maintenance')) throw invalid(name, 'Give either --maintenance or --no-maintenance, not both.');
      const maintenance = flags.has('--maintenance') ? true : flags.has('--no-maintenance') ? false : undefined;
      return { command: { name, version: v, env, maintenance, dryRun: flags.has('--dry-run') }, notes };
    }
    case 'rollback': {
      const env = takeEnv(true);
      const raw = positional.shift();
      const v = raw === undefined ? undefined : version(raw);
      noMore();
      return { command: { name, version: v, env, dryRun: flags.has('--dry-run') }, notes };
    }
    case 'maintenance': {
      const env = takeEnv(true);
      const state = positional.shift()?.toLowerCase();
      if (state !== 'on' && state !== 'off') throw invalid(name, '`maintenance` needs `on` or `off`.');
      noMore();
      return { command: { name, state, env }, notes };
    }
    case 'migrate': {
      const env = takeEnv(true);
      const direction = positional.shift();
      // `upgrade` always goes to the running image's head: the target "head" stands for it.
      if (direction === 'upgrade') {
        noMore();
        return { command: { name, target: 'head', env }, notes };
      }
      if (direction !== 'downgrade') throw invalid(name, 'Give `migrate upgrade` or `migrate downgrade REV|-1|base`.');
      const target = positional.shift();
      if (target === undefined) throw invalid(name, '`migrate downgrade` needs a revision, `-1` or `base`.');
      if (target === 'head' || target.startsWith('+')) throw invalid(name, '`migrate downgrade` goes down only; to apply pending migrations use `migrate upgrade`.');
      if (target !== '-1' && target !== 'base' && !REVISION.test(target)) throw invalid(name, `"${shown(target)}" is not a revision id (e.g. 031), -1 or base.`);
      noMore();
      return { command: { name, target, env }, notes };
    }
    case 'logs': {
      const env = takeEnv(true);
      noMore();
      let tail = LOG_TAIL_DEFAULT;
      const t = flags.get('--tail');
      if (typeof t === 'string') {
        const range = `a whole number of lines from 1 to ${LOG_TAIL_MAX}, e.g. \`--tail 200\``;
        if (!/^\d+$/.test(t) || Number(t) < 1) throw invalid(name, `--tail "${shown(t)}" is not a line count: give ${range}.`);
        // Refused rather than quietly cut down: the person should know they are not getting what they asked for.
        if (Number(t) > LOG_TAIL_MAX) throw invalid(name, `--tail ${shown(t)} is more than \`logs\` shows (at most ${LOG_TAIL_MAX} lines): give ${range}. Longer logs are read on the host.`);
        tail = Number(t);
      }
      return { command: { name, env, tail }, notes };
    }
    case 'cancel': {
      if (flags.has('--env')) throw invalid(name, '`cancel` takes a job id, not an environment.');
      const job = positional.shift();
      if (job !== undefined && !JOB_ID.test(job)) throw invalid(name, `"${shown(job)}" is not a job id.`);
      noMore();
      return { command: { name, job }, notes };
    }
    case 'unlock': {
      const explicit = flags.get('--env') ?? positional.find(isEnv);
      if (explicit === undefined) throw invalid(name, '`unlock` needs the environment named explicitly, so the default is never unlocked by accident.');
      const env = takeEnv(true);
      noMore();
      return { command: { name, env }, notes };
    }
  }
}
