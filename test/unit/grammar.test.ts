// Unit tests for the slash-command grammar (src/commands/grammar.ts) against the contract's
// "Slash command grammar" section.
import { describe, expect, it } from 'vitest';
import { LOG_TAIL_DEFAULT, LOG_TAIL_MAX, MAX_TEXT, parseCommand, suggest, type ParseContext, type Parsed } from '../../src/commands/grammar.js';
import { SPECS } from '../../src/commands/specs.js';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';

const ctx: ParseContext = { envNames: ['production', 'staging'], defaultEnv: 'production' };
const noDefault: ParseContext = { envNames: ['production', 'staging'], defaultEnv: undefined };

const parse = (text: string, c: ParseContext = ctx): Parsed => parseCommand(text, c);

/** Runs the parser and returns the ChatOpsError it throws; fails the test if it returns or throws anything else. */
function refuse(text: string, c: ParseContext = ctx): ChatOpsError {
  let thrown: unknown;
  try {
    const result = parseCommand(text, c);
    thrown = new Error(`expected parseCommand(${JSON.stringify(text.slice(0, 80))}) to throw, got ${JSON.stringify(result)}`);
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof ChatOpsError)) throw thrown instanceof Error ? thrown : new Error(String(thrown));
  return thrown;
}

const usageOf = (name: string): string => `/engramia ${SPECS.find((s) => s.name === name)!.usage}`;

/** Length of the longest substring `a` and `b` share (dynamic programming, O(|a|·|b|)). */
function longestCommonSubstring(a: string, b: string): number {
  let best = 0;
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const cur = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) {
      if (a[i - 1] === b[j - 1]) {
        cur[j] = prev[j - 1]! + 1;
        if (cur[j]! > best) best = cur[j]!;
      }
    }
    prev = cur;
  }
  return best;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe('help', () => {
  it.each(['', '   ', 'help', 'HELP', '--help', '-h', '  help  '])('%j is help', (text) => {
    expect(parse(text)).toEqual({ command: { name: 'help' }, notes: [] });
  });

  it('refuses arguments to help, with the usage line', () => {
    const err = refuse('help deploy');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('deploy');
    expect(err.details.usage).toBe('/engramia help');
  });

  it('help needs no environment even when none is the default', () => {
    expect(parse('help', noDefault).command).toEqual({ name: 'help' });
  });
});

describe('read-only commands with an optional ENV', () => {
  const names = ['health', 'version', 'migrations', 'status', 'diagnose', 'history'] as const;

  it.each(names)('%s uses the default environment when none is named', (name) => {
    expect(parse(name)).toEqual({ command: { name, env: 'production' }, notes: [] });
  });

  it.each(names)('%s takes a positional ENV', (name) => {
    expect(parse(`${name} staging`).command).toEqual({ name, env: 'staging' });
  });

  it.each(names)('%s takes --env ENV and --env=ENV', (name) => {
    expect(parse(`${name} --env staging`).command).toEqual({ name, env: 'staging' });
    expect(parse(`${name} --env=staging`).command).toEqual({ name, env: 'staging' });
  });

  it('command words are case-insensitive, environments are not', () => {
    expect(parse('Health staging').command).toEqual({ name: 'health', env: 'staging' });
    const err = refuse('health STAGING');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('STAGING');
  });

  it('tolerates extra whitespace, tabs and a trailing newline', () => {
    expect(parse('  health \t  staging \n').command).toEqual({ name: 'health', env: 'staging' });
  });

  it('a positional ENV and the same --env agree', () => {
    expect(parse('health staging --env staging').command).toEqual({ name: 'health', env: 'staging' });
  });

  it('a positional ENV and a different --env conflict', () => {
    const err = refuse('health staging --env production');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toMatch(/two environments/i);
    expect(err.details.usage).toBe(usageOf('health'));
  });

  it('an unknown --env is ENV_UNKNOWN and lists the known ones', () => {
    const err = refuse('health --env prod');
    expect(err.code).toBe(ErrorCode.EnvUnknown);
    expect(err.message).toContain('"prod"');
    expect(err.details.known).toEqual(['production', 'staging']);
    expect(err.details.usage).toBe(usageOf('health'));
  });

  it('an unknown positional word is refused and the known environments are hinted', () => {
    const err = refuse('health prod');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('"prod"');
    expect(err.message).toContain('production, staging');
    expect(err.details.usage).toBe(usageOf('health'));
  });

  it('refuses a second positional argument', () => {
    const err = refuse('status staging production');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unexpected argument');
  });

  it('with no default environment, an unnamed ENV is refused and the known ones are listed', () => {
    const err = refuse('health', noDefault);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('production, staging');
    expect(err.details.usage).toBe(usageOf('health'));
    expect(parse('health staging', noDefault).command).toEqual({ name: 'health', env: 'staging' });
  });

  it('--env needs a value', () => {
    for (const text of ['health --env', 'health --env=', 'deploy 0.6.1 --env --dry-run']) {
      const err = refuse(text);
      expect(err.code, text).toBe(ErrorCode.CommandInvalid);
      expect(err.message, text).toContain('--env needs a value');
    }
  });
});

describe('deploy', () => {
  it('parses VERSION with defaults', () => {
    expect(parse('deploy 0.6.1')).toEqual({
      command: { name: 'deploy', version: '0.6.1', env: 'production', maintenance: undefined, dryRun: false },
      notes: [],
    });
  });

  it('parses ENV and every flag, in any order', () => {
    const want = { name: 'deploy', version: '0.6.1', env: 'staging', maintenance: true, dryRun: true };
    expect(parse('deploy 0.6.1 staging --maintenance --dry-run').command).toEqual(want);
    expect(parse('deploy --dry-run --maintenance 0.6.1 staging').command).toEqual(want);
    expect(parse('deploy --env staging 0.6.1 --dry-run --maintenance').command).toEqual(want);
    expect(parse('deploy 0.6.1 --env=staging --maintenance --dry-run').command).toEqual(want);
  });

  it('--no-maintenance gives maintenance: false', () => {
    expect(parse('deploy 0.6.1 --no-maintenance').command).toMatchObject({ maintenance: false, dryRun: false });
  });

  it('refuses --maintenance together with --no-maintenance', () => {
    const err = refuse('deploy 0.6.1 --maintenance --no-maintenance');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('not both');
    expect(err.details.usage).toBe(usageOf('deploy'));
  });

  it('needs a version', () => {
    for (const text of ['deploy', 'deploy staging', 'deploy --dry-run']) {
      const err = refuse(text);
      expect(err.code, text).toBe(ErrorCode.CommandInvalid);
      expect(err.message, text).toContain('needs the version');
      expect(err.details.usage, text).toBe(usageOf('deploy'));
    }
  });

  it('accepts tags the Docker grammar allows', () => {
    for (const tag of ['0.6.1', '0.7.0-rc.1', 'latest', '_x', 'A', 'a'.repeat(128), 'sha-abc123', '2024.01.02_1']) {
      expect(parse(`deploy ${tag}`).command, tag).toMatchObject({ name: 'deploy', version: tag });
    }
  });

  it.each([
    ['v0.6.1', '0.6.1'],
    ['V0.6.1', '0.6.1'],
    ['v1.2', '1.2'],
    ['v0.7.0-rc.1', '0.7.0-rc.1'],
  ])('drops the leading v of %s and says so', (raw, want) => {
    const p = parse(`deploy ${raw}`);
    expect(p.command).toMatchObject({ name: 'deploy', version: want });
    expect(p.notes).toHaveLength(1);
    expect(p.notes[0]).toContain(`\`${want}\``);
    expect(p.notes[0]).toContain(`"${raw}"`);
    expect(p.notes[0]).toMatch(/leading "v"/);
  });

  it('keeps a v that is not the prefix of a semver tag', () => {
    expect(parse('deploy vnext')).toEqual({
      command: { name: 'deploy', version: 'vnext', env: 'production', maintenance: undefined, dryRun: false },
      notes: [],
    });
    expect(parse('deploy v1').notes).toEqual([]);
  });

  it.each(['.hidden', '-rc1', 'a'.repeat(129), '0.6.1+build', 'ghcr.io/engramia/engramia:0.6.1', '0.6.1:latest', 'v1.2+build', '0..6/1', 'ä1', '@sha256'])(
    'refuses the invalid tag %j with the reason and the usage line',
    (tag) => {
      const err = refuse(`deploy ${tag}`);
      expect(err.code).toBe(ErrorCode.CommandInvalid);
      expect(err.message).toContain('not a valid image tag');
      expect(err.details.command).toBe('deploy');
      expect(err.details.usage).toBe(usageOf('deploy'));
    },
  );

  it('refuses a second version', () => {
    const err = refuse('deploy 0.6.1 0.6.2');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('"0.6.2"');
  });

  it('an ENV-looking word that is not an environment is refused, not taken as the version', () => {
    const err = refuse('deploy 0.6.1 prod');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('production, staging');
  });

  it('refuses options of other commands', () => {
    const err = refuse('deploy 0.6.1 --tail 5');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unknown option "--tail"');
  });

  it('a boolean flag takes no value', () => {
    const err = refuse('deploy 0.6.1 --dry-run=yes');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('takes no value');
  });
});

describe('rollback', () => {
  it('with no version goes back to the previous one (version undefined)', () => {
    expect(parse('rollback')).toEqual({ command: { name: 'rollback', version: undefined, env: 'production', dryRun: false }, notes: [] });
  });

  it('takes VERSION, ENV and --dry-run', () => {
    expect(parse('rollback 0.6.0 staging --dry-run').command).toEqual({ name: 'rollback', version: '0.6.0', env: 'staging', dryRun: true });
    expect(parse('rollback staging').command).toEqual({ name: 'rollback', version: undefined, env: 'staging', dryRun: false });
    expect(parse('rollback --env staging --dry-run').command).toEqual({ name: 'rollback', version: undefined, env: 'staging', dryRun: true });
  });

  it('drops a leading v with a note', () => {
    const p = parse('rollback v0.6.0');
    expect(p.command).toMatchObject({ version: '0.6.0' });
    expect(p.notes.join(' ')).toContain('0.6.0');
  });

  it('refuses an invalid tag with the usage line', () => {
    const err = refuse('rollback 0.6.0;id');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.details.usage).toBe(usageOf('rollback'));
  });

  it('has no maintenance flags', () => {
    const err = refuse('rollback 0.6.0 --maintenance');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unknown option "--maintenance"');
  });
});

describe('maintenance', () => {
  it('on and off, any case, with optional ENV', () => {
    expect(parse('maintenance on').command).toEqual({ name: 'maintenance', state: 'on', env: 'production' });
    expect(parse('maintenance OFF staging').command).toEqual({ name: 'maintenance', state: 'off', env: 'staging' });
    expect(parse('maintenance --env staging on').command).toEqual({ name: 'maintenance', state: 'on', env: 'staging' });
  });

  it.each(['maintenance', 'maintenance maybe', 'maintenance staging', 'maintenance 1'])('%j is refused with the usage line', (text) => {
    const err = refuse(text);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('`on` or `off`');
    expect(err.details.usage).toBe(usageOf('maintenance'));
  });

  it('refuses anything after on/off', () => {
    expect(refuse('maintenance on now').message).toContain('"now"');
  });
});

describe('migrate downgrade', () => {
  it.each(['031', '-1', 'base', '008', 'abc_123'])('accepts the target %s', (target) => {
    expect(parse(`migrate downgrade ${target}`).command).toEqual({ name: 'migrate', target, env: 'production' });
  });

  it('takes ENV positionally or with --env', () => {
    expect(parse('migrate downgrade -1 staging').command).toEqual({ name: 'migrate', target: '-1', env: 'staging' });
    expect(parse('migrate --env staging downgrade base').command).toEqual({ name: 'migrate', target: 'base', env: 'staging' });
  });

  it('needs upgrade or downgrade', () => {
    for (const text of ['migrate', 'migrate 031', 'migrate sideways']) {
      const err = refuse(text);
      expect(err.code, text).toBe(ErrorCode.CommandInvalid);
      expect(err.message, text).toContain('`migrate upgrade` or `migrate downgrade');
      expect(err.details.usage, text).toBe(usageOf('migrate'));
    }
  });

  it('upgrade takes only an environment and always goes to the head', () => {
    expect(parse('migrate upgrade').command).toEqual({ name: 'migrate', target: 'head', env: 'production' });
    expect(parse('migrate upgrade staging').command).toEqual({ name: 'migrate', target: 'head', env: 'staging' });
    const err = refuse('migrate upgrade head');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('"head"');
  });

  it('needs a target', () => {
    const err = refuse('migrate downgrade');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('needs a revision');
  });

  it.each(['-2', '03;1', '$(id)', '+1', 'a'.repeat(33), '0.31'])('refuses the target %j', (target) => {
    const err = refuse(`migrate downgrade ${target}`);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.details.usage).toBe(usageOf('migrate'));
  });

  it('refuses an unknown option like --1', () => {
    const err = refuse('migrate downgrade --1');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unknown option');
  });
});

describe('logs --tail', () => {
  it('defaults to the default tail', () => {
    expect(parse('logs')).toEqual({ command: { name: 'logs', env: 'production', tail: LOG_TAIL_DEFAULT }, notes: [] });
    expect(LOG_TAIL_DEFAULT).toBe(100);
  });

  it('takes --tail N and --tail=N with ENV', () => {
    expect(parse('logs --tail 200').command).toEqual({ name: 'logs', env: 'production', tail: 200 });
    expect(parse('logs staging --tail=50').command).toEqual({ name: 'logs', env: 'staging', tail: 50 });
    expect(parse('logs --tail 1 --env staging').command).toEqual({ name: 'logs', env: 'staging', tail: 1 });
  });

  it('accepts exactly the maximum without a note', () => {
    expect(parse(`logs --tail ${LOG_TAIL_MAX}`)).toEqual({ command: { name: 'logs', env: 'production', tail: LOG_TAIL_MAX }, notes: [] });
  });

  it.each(['1001', '5000', '99999', '9'.repeat(30)])('refuses --tail %s above the cap, saying the range; nothing is cut down silently', (n) => {
    const err = refuse(`logs --tail ${n}`);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain(`at most ${LOG_TAIL_MAX} lines`);
    expect(err.message).toContain(`from 1 to ${LOG_TAIL_MAX}`);
    expect(err.message).toContain('e.g. `--tail 200`');
    expect(err.details.usage).toBe(usageOf('logs'));
    expect(LOG_TAIL_MAX).toBe(1000);
  });

  it.each(['0', '-5', 'abc', '1e3', '0x10', '10.5', '１０', '٣', '10;id', '$(id)', '+5'])('refuses --tail %j: what is wrong and what is right', (n) => {
    const err = refuse(`logs --tail ${n}`);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('is not a line count');
    expect(err.message).toContain(`from 1 to ${LOG_TAIL_MAX}`);
    expect(err.details.usage).toBe(usageOf('logs'));
  });

  it('takes leading zeros as the number they are', () => {
    expect(parse('logs --tail=007').command).toEqual({ name: 'logs', env: 'production', tail: 7 });
  });

  it('refuses --tail given twice, and a stray argument', () => {
    expect(refuse('logs --tail 5 --tail 6').message).toContain('given twice');
    expect(refuse('logs 5').message).toContain('Unexpected argument "5"');
  });

  it('refuses --tail with no value', () => {
    expect(refuse('logs --tail').message).toContain('--tail needs a value');
    expect(refuse('logs --tail --env staging').message).toContain('--tail needs a value');
  });

  it('--tail belongs to logs only', () => {
    const err = refuse('health --tail 5');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unknown option "--tail"');
  });
});

describe('cancel', () => {
  it('with or without a job id', () => {
    expect(parse('cancel').command).toEqual({ name: 'cancel', job: undefined });
    expect(parse('cancel 42').command).toEqual({ name: 'cancel', job: '42' });
    expect(parse('cancel deploy-production_7').command).toEqual({ name: 'cancel', job: 'deploy-production_7' });
  });

  it('needs no default environment', () => {
    expect(parse('cancel 42', noDefault).command).toEqual({ name: 'cancel', job: '42' });
  });

  it('refuses an environment', () => {
    const err = refuse('cancel --env production');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('job id');
  });

  it.each(['42;id', '$(id)', 'a'.repeat(65), '4.2'])('refuses the job id %j', (job) => {
    const err = refuse(`cancel ${job}`);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.details.usage).toBe(usageOf('cancel'));
  });

  it('refuses a second argument', () => {
    expect(refuse('cancel 42 43').message).toContain('"43"');
  });
});

describe('unlock', () => {
  it('needs the environment named explicitly, even when there is a default', () => {
    const err = refuse('unlock');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toMatch(/explicitly/);
    expect(err.details.usage).toBe(usageOf('unlock'));
  });

  it('takes ENV positionally or with --env', () => {
    expect(parse('unlock production').command).toEqual({ name: 'unlock', env: 'production' });
    expect(parse('unlock --env staging').command).toEqual({ name: 'unlock', env: 'staging' });
    expect(parse('unlock --env=staging', noDefault).command).toEqual({ name: 'unlock', env: 'staging' });
  });

  it('an unknown --env is ENV_UNKNOWN', () => {
    const err = refuse('unlock --env prod');
    expect(err.code).toBe(ErrorCode.EnvUnknown);
    expect(err.details.known).toEqual(['production', 'staging']);
  });

  it('an unknown positional environment is refused and never falls back to the default', () => {
    const err = refuse('unlock prod');
    expect([ErrorCode.CommandInvalid, ErrorCode.EnvUnknown]).toContain(err.code);
  });

  it('refuses two environments', () => {
    expect(refuse('unlock production staging').code).toBe(ErrorCode.CommandInvalid);
  });
});

describe('unknown commands and options', () => {
  it.each([
    ['deplyo 0.6.1', 'deploy'],
    ['helth', 'health'],
    ['verison', 'version'],
    ['rolback', 'rollback'],
    ['STATS', 'status'],
    // Swapped letters count as one edit (Damerau): two swaps are still within reach.
    ['dpelyo 0.6.1', 'deploy'],
    ['stauts', 'status'],
    ['lgos --tail 5', 'logs'],
    ['hlep', 'help'],
    ['mirgatoins', 'migrations'],
  ])('%j suggests %s', (text, near) => {
    const err = refuse(text);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unknown command');
    expect(err.message).toContain(`Did you mean \`${near}\``);
    expect(err.details.usage).toBe('/engramia help');
  });

  it('makes no suggestion for a word far from every command', () => {
    const err = refuse('xyzzy');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('"xyzzy"');
    expect(err.message).not.toContain('Did you mean');
    expect(suggest('xyzzy')).toBeUndefined();
  });

  it('suggests nothing three edits away', () => {
    expect(suggest('dxplxx')).toBeUndefined();
    expect(refuse('dxplxx 0.6.1').message).not.toContain('Did you mean');
  });

  it('suggest() finds the nearest command', () => {
    expect(suggest('deplo')).toBe('deploy');
    expect(suggest('LOGZ')).toBe('logs');
  });

  it.each([
    ['health --force', '--force'],
    ['health --dry-run', '--dry-run'],
    ['deploy 0.6.1 --yes', '--yes'],
    ['version --maintenance', '--maintenance'],
    ['logs --follow', '--follow'],
  ])('%j: unknown option %s', (text, opt) => {
    const err = refuse(text);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain(`Unknown option "${opt}"`);
    expect(typeof err.details.usage).toBe('string');
  });

  it.each([
    ['deploy 0.6.1 --dry-run --dry-run', '--dry-run'],
    ['health --env production --env staging', '--env'],
    ['health --env=production --env production', '--env'],
    ['logs --tail 5 --tail=6', '--tail'],
    ['deploy 0.6.1 --maintenance --maintenance', '--maintenance'],
  ])('%j: duplicate option %s', (text, opt) => {
    const err = refuse(text);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain(`${opt} is given twice`);
  });
});

describe('smart dashes', () => {
  it('reads an em dash as --', () => {
    expect(parse('deploy 0.6.1 \u2014dry-run \u2014maintenance').command).toEqual({
      name: 'deploy',
      version: '0.6.1',
      env: 'production',
      maintenance: true,
      dryRun: true,
    });
  });

  it('reads an en dash as --', () => {
    expect(parse('health \u2013env staging').command).toEqual({ name: 'health', env: 'staging' });
    expect(parse('logs \u2013tail=20').command).toEqual({ name: 'logs', env: 'production', tail: 20 });
    expect(parse('deploy 0.6.1 \u2013no-maintenance').command).toMatchObject({ maintenance: false });
  });

  it('an unknown option written with a smart dash is still an unknown option', () => {
    const err = refuse('health \u2014force');
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain('Unknown option "--force"');
  });
});

describe('hostile input', () => {
  const hostile: Array<[string, string]> = [
    ['semicolon in a version', 'deploy 0.6.1;id'],
    ['command substitution', 'deploy $(id)'],
    ['command substitution as ENV', 'health $(id)'],
    ['backticks', 'deploy `id`'],
    ['backticks in a rollback', 'rollback 0.6.0`reboot`'],
    ['newline then a command', 'deploy 0.6.1\nrm -rf /'],
    ['carriage return and newline', 'health\r\nproduction;reboot'],
    ['newline inside a tag', 'deploy 0.6\n.1'],
    ['quoted env with a semicolon', "health --env 'x;y'"],
    ['--env= with a semicolon', 'deploy 0.6.1 --env=production;id'],
    ['pipe', 'deploy 0.6.1|sh'],
    ['redirect', 'deploy 0.6.1>/etc/passwd'],
    ['ampersand', 'logs --tail 10&id'],
    ['migration target with substitution', 'migrate downgrade $(id)'],
    ['job id with a semicolon', 'cancel 1;id'],
    ['Arabic-Indic digits in a version', 'deploy \u0660.\u0666.\u0661'],
    ['Arabic-Indic digits after v', 'deploy v\u0660.\u0666.\u0661'],
    ['fullwidth digits in a version', 'deploy \uff10.\uff16.\uff11'],
    ['Devanagari digits in --tail', 'logs --tail \u0967\u0966'],
    ['fullwidth letters in an env', 'health \uff50\uff52\uff4f\uff44\uff55\uff43\uff54\uff49\uff4f\uff4e'],
    ['Cyrillic look-alike env', 'health pr\u043educti\u043en'],
    ['zero-width space in a version', 'deploy 0.6.1\u200b'],
    ['NUL byte in a version', 'deploy 0.6.1\u0000;id'],
    ['NUL byte in an env', 'health production\u0000'],
    ['NUL byte in a command word', 'heal\u0000th'],
    ['escape sequences', 'deploy \u001b[31mred\u001b[0m'],
    ['bell and backspace', 'health \u0007\u0008production'],
    ['right-to-left override', 'deploy 1.0\u202e1.6.0'],
    ['a 400-character tag', `deploy ${'A'.repeat(400)}`],
    ['a 400-character env', `health --env ${'x'.repeat(400)}`],
    ['a 400-character command word', 'z'.repeat(400)],
    ['a 10 kB string', `deploy ${'9'.repeat(10_000)}`],
    ['a 10 kB string of one token', 'x'.repeat(10_240)],
    ['just over the length limit', `health ${' '.repeat(MAX_TEXT)}`],
  ];

  it.each(hostile)('%s is refused with a short, clean message', (_label, text) => {
    const err = refuse(text);
    expect([ErrorCode.CommandInvalid, ErrorCode.EnvUnknown]).toContain(err.code);
    expect(err.message).not.toMatch(CONTROL);
    expect(longestCommonSubstring(err.message, text)).toBeLessThanOrEqual(40);
    expect(err.message.length).toBeLessThan(400);
    // The details the renderer may show carry no input either: only the usage line and known facts.
    const details = JSON.stringify(err.details);
    expect(details).not.toMatch(/\\u0000|\\u001b/);
    expect(longestCommonSubstring(details, text)).toBeLessThanOrEqual(40);
  });

  it('an overlong command is refused before it is tokenised, without echoing it', () => {
    const text = `deploy ${'0.6.1 '.repeat(2000)}`;
    const err = refuse(text);
    expect(err.code).toBe(ErrorCode.CommandInvalid);
    expect(err.message).toContain(String(text.length));
    expect(err.message).not.toContain('0.6.1');
  });

  it('shows a long bad token clipped to 40 characters with an ellipsis', () => {
    const err = refuse(`deploy ${'B'.repeat(200)}`);
    expect(err.message).toContain(`"${'B'.repeat(40)}…"`);
    expect(err.message).not.toContain('B'.repeat(41));
  });

  it('replaces control characters in a shown token', () => {
    const err = refuse('deploy 0.6.1\u0000\u001b');
    expect(err.message).toContain('"0.6.1??"');
  });
});
