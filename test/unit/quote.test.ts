// Unit tests for src/ssh/quote.ts. Besides string comparisons, every safety claim is proved by
// running the rendered string through a real POSIX shell (/bin/sh -c), the way sshd does.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';
import { renderCommand, shellQuote, type RemoteCommand } from '../../src/ssh/quote.js';

let sandbox: string;
let canary: string;

beforeAll(() => {
  sandbox = mkdtempSync(path.join(tmpdir(), 'quote-test-'));
  canary = path.join(sandbox, `pwned-${process.pid}`);
});

afterAll(() => {
  rmSync(sandbox, { recursive: true, force: true });
});

/** Runs a rendered command line like sshd does: `sh -c LINE`, in the sandbox, with a minimal environment. */
function sh(line: string, cwd = sandbox): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync('/bin/sh', ['-c', line], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: sandbox, LC_ALL: 'C.UTF-8' },
    timeout: 10_000,
  });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function expectUnsafe(fn: () => unknown): ChatOpsError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ChatOpsError);
  expect((thrown as ChatOpsError).code).toBe(ErrorCode.UnsafeArgument);
  return thrown as ChatOpsError;
}

const HOSTILE: Array<[string, string]> = [
  ['semicolon', ';id'],
  ['semicolon with touch', `x; touch CANARY`],
  ['command substitution', '$(touch CANARY)'],
  ['backticks', '`touch CANARY`'],
  ['variable expansion', '$HOME'],
  ['braced variable', '${PATH:=x}'],
  ['arithmetic', '$((1+1))'],
  ['single quote', "'"],
  ['quote breakout', "'; touch CANARY; echo '"],
  ['double quote', '"'],
  ['double-quoted substitution', '"$(touch CANARY)"'],
  ['backslash', '\\'],
  ['trailing backslash', 'abc\\'],
  ['newline', 'a\nb'],
  ['newline then a command', 'x\ntouch CANARY'],
  ['carriage return', 'a\rb'],
  ['tab', 'a\tb'],
  ['glob star', '*'],
  ['glob question mark', '?'],
  ['glob class', '[a-z]*'],
  ['tilde', '~'],
  ['tilde path', '~/x'],
  ['tilde after a colon', 'a:~'],
  ['assignment-like with tilde', 'a=~'],
  ['dash rf', '-rf'],
  ['double dash', '--'],
  ['printf format', '%s%n%d'],
  ['pipe', 'a|touch CANARY'],
  ['and', 'a&&touch CANARY'],
  ['background', 'a&'],
  ['redirect out', '>CANARY'],
  ['redirect in', '</etc/passwd'],
  ['here-string-ish', '<<EOF'],
  ['brace expansion', '{a,b}'],
  ['comment', '#not a comment'],
  ['history bang', '!!'],
  ['parentheses', '(subshell)'],
  ['unicode', 'héllo wörld — 日本語 😀'],
  ['right-to-left override', '\u202etxt.exe'],
  ['empty string', ''],
  ['only spaces', '   '],
  ['very long', 'A'.repeat(20_000) + "'$(touch CANARY)'" + 'B'.repeat(20_000)],
  ['plain word', 'abc'],
  ['plain path', '/opt/engramia/docker-compose.prod.yml'],
  ['equals sign', 'IMAGE_TAG=0.6.1'],
  ['at, percent, plus, comma, colon', 'a@b%c+d,e:f'],
];

describe('shellQuote: exact strings', () => {
  it.each([
    ['abc', 'abc'],
    ['0.6.1', '0.6.1'],
    ['/opt/engramia', '/opt/engramia'],
    ['docker-compose.prod.yml', 'docker-compose.prod.yml'],
    ['-T', '-T'],
    // Quoted: a bare NAME=value word before the command name would be taken as an assignment.
    ['KEY=value', "'KEY=value'"],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ["'", "''\\'''"],
    ['$(id)', "'$(id)'"],
    ['`id`', "'`id`'"],
    [';id', "';id'"],
    ['*', "'*'"],
    ['~', "'~'"],
    ['a\nb', "'a\nb'"],
    ['"', `'"'`],
  ])('shellQuote(%j) === %j', (input, want) => {
    expect(shellQuote(input)).toBe(want);
  });

  it('quotes everything outside the plain set', () => {
    for (const ch of ' \t\n!"#$&\'()*;<>?[\\]^`{|}~') {
      const q = shellQuote(`a${ch}b`);
      expect(q.startsWith("'"), JSON.stringify(ch)).toBe(true);
    }
  });

  it('refuses NUL bytes', () => {
    const err = expectUnsafe(() => shellQuote('a\u0000b'));
    expect(err.message).toMatch(/NUL/);
    expectUnsafe(() => shellQuote('\u0000'));
  });
});

describe('shellQuote: proved by a real shell', () => {
  it.each(HOSTILE)('%s passes through /bin/sh as one unchanged argument', (_label, raw) => {
    const value = raw.replaceAll('CANARY', canary);
    const line = renderCommand({ argv: ['printf', '%s\\n', value] });
    const r = sh(line);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${value}\n`);
    expect(existsSync(canary)).toBe(false);
  });

  it('many hostile values at once arrive as exactly that many arguments, in order', () => {
    const values = HOSTILE.map(([, v]) => v.replaceAll('CANARY', canary));
    const r = sh(renderCommand({ argv: ['printf', '%s\\0', ...values] }));
    expect(r.status).toBe(0);
    expect(r.stdout.split('\u0000').slice(0, -1)).toEqual(values);
    expect(existsSync(canary)).toBe(false);
  });

  it('each argument is counted as exactly one word (no splitting, no globbing)', () => {
    // Files that a glob would match if quoting failed.
    mkdirSync(path.join(sandbox, 'globdir'), { recursive: true });
    for (const f of ['a', 'b', 'c']) spawnSync('touch', [path.join(sandbox, 'globdir', f)]);
    const values = ['*', 'a b c', '', ' ', '?', '[abc]'];
    const r = sh(renderCommand({ cwd: path.join(sandbox, 'globdir'), argv: ['sh', '-c', 'echo "$#"', 'argv0', ...values] }));
    expect(r.stdout).toBe(`${values.length}\n`);
  });

  it('shellQuote output alone is one word in a larger line', () => {
    const value = "x' y \"$(touch CANARY)\" `z`".replaceAll('CANARY', canary);
    const r = sh(`printf '[%s]' ${shellQuote(value)} ${shellQuote('')} ${shellQuote('end')}`);
    expect(r.stdout).toBe(`[${value}][][end]`);
    expect(existsSync(canary)).toBe(false);
  });

  it('a word containing "=" in command position is run as a command, not taken as an assignment', () => {
    // `X=1` unquoted at the start of a simple command is a variable assignment, so the command
    // that was asked for (a program literally named "X=1") would silently never run.
    const r = sh(renderCommand({ argv: ['X=1', 'printf', 'ran'] }));
    expect(r.stdout).not.toBe('ran');
    expect(r.status).toBe(127);
  });
});

describe('renderCommand', () => {
  it('joins quoted argv with single spaces', () => {
    expect(renderCommand({ argv: ['docker', 'compose', '-f', 'docker-compose.prod.yml', 'ps', '--format', 'json'] })).toBe(
      'docker compose -f docker-compose.prod.yml ps --format json',
    );
    expect(renderCommand({ argv: ['echo', 'a b', "c'd"] })).toBe(`echo 'a b' 'c'\\''d'`);
  });

  it('puts per-command variables before the command', () => {
    expect(renderCommand({ env: { IMAGE_TAG: '0.6.1' }, argv: ['docker', 'compose', 'up', '-d'] })).toBe('IMAGE_TAG=0.6.1 docker compose up -d');
    expect(renderCommand({ env: { A: 'x y', B: '' }, argv: ['true'] })).toBe("A='x y' B='' true");
  });

  it('changes directory with && before the command', () => {
    expect(renderCommand({ cwd: '/opt/engramia', argv: ['ls'] })).toBe('cd /opt/engramia && ls');
    expect(renderCommand({ cwd: '/opt/my app', env: { IMAGE_TAG: '1' }, argv: ['ls'] })).toBe("cd '/opt/my app' && IMAGE_TAG=1 ls");
  });

  it('refuses an empty argv', () => {
    const err = expectUnsafe(() => renderCommand({ argv: [] }));
    expect(err.message).toMatch(/empty/);
  });

  it.each(['1BAD', 'A-B', 'A B', 'A;id', '', 'A=B', '$(id)', 'É', 'A\nB', 'a.b'])('refuses the environment variable name %j', (name) => {
    expectUnsafe(() => renderCommand({ env: { [name]: 'v' }, argv: ['true'] }));
  });

  it.each(['GOOD', '_X', 'IMAGE_TAG', 'CORE_TAG', 'a1_b2'])('accepts the environment variable name %j', (name) => {
    expect(renderCommand({ env: { [name]: 'v' }, argv: ['true'] })).toBe(`${name}=v true`);
  });

  it('refuses NUL bytes in argv, in env values and in cwd', () => {
    expectUnsafe(() => renderCommand({ argv: ['echo', 'a\u0000b'] }));
    expectUnsafe(() => renderCommand({ argv: ['echo\u0000'] }));
    expectUnsafe(() => renderCommand({ env: { A: '\u0000' }, argv: ['true'] }));
    expectUnsafe(() => renderCommand({ cwd: '/tmp\u0000/x', argv: ['true'] }));
  });

  it.each(HOSTILE)('an env value that is %s reaches the program unchanged', (_label, raw) => {
    const value = raw.replaceAll('CANARY', canary);
    // printenv prints the value followed by a newline; a variable that is empty is still printed.
    const r = sh(renderCommand({ env: { CHATOPS_TEST_VALUE: value }, argv: ['printenv', 'CHATOPS_TEST_VALUE'] }));
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${value}\n`);
    expect(existsSync(canary)).toBe(false);
  });

  it('a variable is set for that command only', () => {
    const line = `${renderCommand({ env: { CHATOPS_ONE: 'x' }, argv: ['true'] })}; printenv CHATOPS_ONE || echo unset`;
    expect(sh(line).stdout).toBe('unset\n');
  });

  it('a failing cd prevents the command from running', () => {
    const r = sh(renderCommand({ cwd: '/nonexistent', argv: ['echo', 'ran'] }));
    expect(r.stdout).not.toContain('ran');
    expect(r.status).not.toBe(0);
  });

  it('a failing cd prevents a command that has variables too', () => {
    const r = sh(renderCommand({ cwd: path.join(sandbox, 'no such dir'), env: { IMAGE_TAG: '0.6.1' }, argv: ['touch', canary] }));
    expect(r.status).not.toBe(0);
    expect(existsSync(canary)).toBe(false);
  });

  it('runs in a directory whose name is hostile', () => {
    // No "/" in a file name; `~` is the sandbox (HOME), so a successful injection would create the canary.
    const name = `we ird;$(cd ~ && touch ${path.basename(canary)})'q"\`x\`*`;
    const dir = path.join(sandbox, name);
    mkdirSync(dir);
    const r = sh(renderCommand({ cwd: dir, argv: ['pwd'] }), '/');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${dir}\n`);
    expect(existsSync(canary)).toBe(false);
  });

  it('a hostile cwd that does not exist runs nothing', () => {
    const r = sh(renderCommand({ cwd: `/nonexistent; touch ${canary}; echo`, argv: ['echo', 'ran'] }));
    expect(r.stdout).not.toContain('ran');
    expect(existsSync(canary)).toBe(false);
  });

  it('the full shape works end to end: cd, variable, argv', () => {
    const cmd: RemoteCommand = { cwd: sandbox, env: { IMAGE_TAG: '0.6.1;id' }, argv: ['sh', '-c', 'printf "%s|%s" "$IMAGE_TAG" "$(pwd)"'] };
    const r = sh(renderCommand(cmd), '/');
    expect(r.stdout).toBe(`0.6.1;id|${sandbox}`);
  });

  it('left no files behind in the sandbox other than the ones the tests made', () => {
    const entries = readdirSync(sandbox).filter((e) => e !== 'globdir' && !e.startsWith('we ird'));
    expect(entries).toEqual([]);
  });
});
