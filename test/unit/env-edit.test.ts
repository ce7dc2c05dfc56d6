// The .env edit scripts of src/runbooks/env-edit.ts, run for real with this machine's sh, awk and
// coreutils (what a Debian host has), plus the parsing that reads the result back.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assignmentPattern, parseEnvLines } from '../../src/engramia/compose.js';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { readBack, SET_ENV_SCRIPT, setEnvVar, UNSET_ENV_SCRIPT } from '../../src/runbooks/env-edit.js';
import { renderCommand, showCommand } from '../../src/ssh/quote.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'env-edit-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ENV = '# production\nexport IMAGE_TAG=0.6.0\nENGRAMIA_DATABASE_URL=postgresql://u:secret@db/e\nIMAGE_TAG = 0.5.9\nIMAGE_TAGGED=keep\nOPENAI_API_KEY=sk-secret\n';

function edit(script: string, ...args: string[]) {
  const r = spawnSync('sh', ['-c', script, 'chatops-test', '.env', ...args], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}
const set = (k: string, v: string) => edit(SET_ENV_SCRIPT, k, v);
const unset = (k: string) => edit(UNSET_ENV_SCRIPT, k);
const envText = () => readFileSync(join(dir, '.env'), 'utf8');
const leftovers = () => readdirSync(dir).filter((f) => f !== '.env' && f !== 'fill');

describe('.env edits on the host', () => {
  it('set replaces every form of the variable (export, spaces) with one line, in place, and keeps the rest', () => {
    writeFileSync(join(dir, '.env'), ENV);
    expect(set('IMAGE_TAG', '0.6.1')).toEqual({ status: 0, stderr: '' });
    expect(envText()).toBe('# production\nIMAGE_TAG=0.6.1\nENGRAMIA_DATABASE_URL=postgresql://u:secret@db/e\nIMAGE_TAGGED=keep\nOPENAI_API_KEY=sk-secret\n');
    expect(leftovers()).toEqual([]);
  });

  it('set appends when the variable is missing; unset removes every form and nothing else', () => {
    writeFileSync(join(dir, '.env'), ENV);
    expect(set('ENGRAMIA_MAINTENANCE', 'true').status).toBe(0);
    expect(envText()).toBe(`${ENV}ENGRAMIA_MAINTENANCE=true\n`);
    expect(unset('ENGRAMIA_MAINTENANCE').status).toBe(0);
    expect(unset('IMAGE_TAG').status).toBe(0);
    expect(envText()).toBe('# production\nENGRAMIA_DATABASE_URL=postgresql://u:secret@db/e\nIMAGE_TAGGED=keep\nOPENAI_API_KEY=sk-secret\n');
  });

  it("keeps .env's mode (and owner) and writes through a symlink to the real file", () => {
    writeFileSync(join(dir, 'real.env'), 'A=1\n');
    chmodSync(join(dir, 'real.env'), 0o640);
    symlinkSync('real.env', join(dir, '.env'));
    const before = statSync(join(dir, 'real.env'));
    expect(set('IMAGE_TAG', '0.6.1').status).toBe(0);
    const after = statSync(join(dir, 'real.env'));
    expect(readFileSync(join(dir, 'real.env'), 'utf8')).toBe('A=1\nIMAGE_TAG=0.6.1\n');
    expect([after.mode & 0o7777, after.uid, after.gid]).toEqual([0o640, before.uid, before.gid]);
    expect(statSync(join(dir, '.env'), { throwIfNoEntry: false })).toBeDefined();
    expect(readdirSync(dir).sort()).toEqual(['.env', 'real.env']);
  });

  it('refuses a read-only .env (mode 0400) even as root, and changes nothing', () => {
    writeFileSync(join(dir, '.env'), ENV);
    chmodSync(join(dir, '.env'), 0o400);
    const r = set('ENGRAMIA_MAINTENANCE', 'true');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('.env is read-only (mode 400)');
    expect(envText()).toBe(ENV);
    expect(leftovers()).toEqual([]);
  });

  it('refuses a missing .env instead of creating one', () => {
    const r = unset('ENGRAMIA_MAINTENANCE');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('.env does not exist');
    expect(readdirSync(dir)).toEqual([]);
  });

  const root = process.getuid?.() === 0;
  if (!root) console.warn('[env-edit.test] not root: the full-disk case needs `mount -t tmpfs` and is skipped');
  it.skipIf(!root)('on a full disk: fails with "No space left on device", .env intact, no temp file left', () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    try {
      writeFileSync(join(dir, '.env'), ENV);
      chmodSync(join(dir, '.env'), 0o600);
      spawnSync('dd', ['if=/dev/zero', `of=${join(dir, 'fill')}`, 'bs=1k', 'count=128']);
      const r = set('ENGRAMIA_MAINTENANCE', 'true');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('No space left on device');
      expect(envText()).toBe(ENV);
      expect(leftovers()).toEqual([]);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('reading the variables back', () => {
  it('the grep pattern finds export and spaced forms, not longer names', () => {
    writeFileSync(join(dir, '.env'), ENV);
    const r = spawnSync('grep', ['-E', assignmentPattern(['ENGRAMIA_MAINTENANCE', 'IMAGE_TAG']), '.env'], { cwd: dir, encoding: 'utf8' });
    expect(r.stdout).toBe('export IMAGE_TAG=0.6.0\nIMAGE_TAG = 0.5.9\n');
    // The last assignment wins, as compose reads it.
    expect(parseEnvLines(r.stdout).get('IMAGE_TAG')).toBe('0.5.9');
  });

  it('readBack: a value, null for "no such line" (grep 1), undefined when .env could not be read (grep 2)', () => {
    expect(readBack(0, 'export ENGRAMIA_MAINTENANCE=true\n', 'ENGRAMIA_MAINTENANCE')).toBe('true');
    expect(readBack(0, 'IMAGE_TAG = 0.6.1\n', 'IMAGE_TAG')).toBe('0.6.1');
    expect(readBack(1, '', 'IMAGE_TAG')).toBeNull();
    expect(readBack(2, '', 'IMAGE_TAG')).toBeUndefined();
    expect(readBack(null, '', 'IMAGE_TAG')).toBeUndefined();
  });
});

describe('how an edit is shown', () => {
  it('people see a label for the script and the quoted values; the host gets the whole script', () => {
    const c = setEnvVar({ deployPath: '/opt/engramia' } as EnvironmentConfig, 'IMAGE_TAG', "0.6.1'x");
    expect(showCommand(c)).toBe("cd /opt/engramia && sh -c <.env edit script: temp file, checked, mv> chatops-set-env .env IMAGE_TAG '0.6.1'\\''x'");
    expect(renderCommand(c)).toContain('mv -f -- "$t" "$f"');
    expect(renderCommand(c).endsWith("chatops-set-env .env IMAGE_TAG '0.6.1'\\''x'")).toBe(true);
  });
});
