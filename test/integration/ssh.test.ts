import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { SshExecutor } from '../../src/ssh/executor.js';
import { clearFaults, createHost, readCommandLog, setFault } from '../world/sim/host.mjs';
import { closedPort } from './harness.js';

const sshd = inject('sshd');
const logs: string[] = [];
const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
const key = new Secret(readFileSync(sshd.privateKeyPath, 'utf8'), sshd.privateKeyPath);
const target = { host: sshd.host, port: sshd.port, username: sshd.username, hostKeySha256: sshd.hostKeySha256, readyTimeoutMs: 5000 };

let root: string;
let deployPath: string;
let registryToken: string;
let ex: SshExecutor | undefined;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'chatops-ssh-'));
  ({ deployPath, registryToken } = createHost(join(root, 'opt-engramia')));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(async () => {
  await ex?.close();
  ex = undefined;
  clearFaults(deployPath);
});

async function rejection(p: Promise<unknown>): Promise<ChatOpsError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatOpsError);
    return err as ChatOpsError;
  }
  throw new Error('expected a rejection');
}

/** A killed process may linger as a zombie until something reaps it; that is dead for our purpose. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

describe('SshExecutor against a real sshd', () => {
  it('runs no more commands at once than maxSessions allows on its one connection; the rest wait their turn', async () => {
    ex = new SshExecutor({ ...target, maxSessions: 3 }, key, log);
    const trace = join(root, 'sessions.trace');
    // Each command marks its start and end in one file (O_APPEND keeps the small writes whole).
    const script = `echo + >> ${trace}; sleep 0.2; echo - >> ${trace}`;
    const results = await Promise.all(Array.from({ length: 12 }, () => ex!.exec({ argv: ['sh', '-c', script] }, { timeoutMs: 20_000 })));
    expect(results.map((r) => r.exitCode)).toEqual(Array(12).fill(0));
    let running = 0;
    let most = 0;
    for (const mark of readFileSync(trace, 'utf8').trim().split('\n')) {
      running += mark === '+' ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(running).toBe(0);
    expect(most).toBe(3);
  });

  it('passes hostile arguments through verbatim, streams lines in order and reports exit codes', async () => {
    ex = new SshExecutor(target, key, log);
    const hostile = ['$(id)', ';id', '`id`', "it's", 'a b', '*', '~', 'x\ny', '--', '-rf', 'KEY=v', 'ünïcode', ''];
    const lines: string[] = [];
    const res = await ex.exec({ argv: ['printf', '%s\\n', ...hostile] }, { timeoutMs: 10_000, onLine: (s, l) => s === 'stdout' && lines.push(l) });
    expect(res.exitCode).toBe(0);
    expect(res.stdout.toString('utf8')).toBe(hostile.map((h) => `${h}\n`).join(''));
    expect(lines).toEqual(hostile.flatMap((h) => h.split('\n')));
    expect(res.stderr).toBe('');

    const failed = await ex.exec({ argv: ['sh', '-c', 'echo oops >&2; exit 3'] }, { timeoutMs: 10_000 });
    expect(failed.exitCode).toBe(3);
    expect(failed.stderr).toBe('oops\n');
  });

  it('reuses one connection for many commands', async () => {
    ex = new SshExecutor(target, key, log);
    const before = logs.filter((l) => l.includes('"msg":"ssh connected"')).length;
    await Promise.all(Array.from({ length: 5 }, () => ex!.exec({ argv: ['true'] }, { timeoutMs: 10_000 })));
    await ex.exec({ argv: ['true'] }, { timeoutMs: 10_000 });
    expect(logs.filter((l) => l.includes('"msg":"ssh connected"')).length - before).toBe(1);
  });

  it('does not run the command when cd into its folder fails', async () => {
    ex = new SshExecutor(target, key, log);
    const before = readCommandLog(deployPath).length;
    const res = await ex.exec({ cwd: join(root, 'missing'), argv: ['docker', 'image', 'prune', '-f'] }, { timeoutMs: 10_000 });
    expect(res.exitCode).not.toBe(0);
    expect(readCommandLog(deployPath).length).toBe(before);
  });

  it('sends a secret on stdin only: the host sees its hash on stdin and never in argv', async () => {
    ex = new SshExecutor(target, key, log);
    const res = await ex.exec(
      // Its own docker config: the shared sshd's HOME must not keep a credential for other tests to trip on.
      { cwd: deployPath, argv: ['docker', 'login', 'ghcr.io', '-u', 'engramia-bot', '--password-stdin'], env: { DOCKER_CONFIG: join(root, 'docker-config') } },
      { timeoutMs: 10_000, stdin: new Secret(registryToken, 'GHCR_TOKEN') },
    );
    expect(res.exitCode).toBe(0);
    expect(res.stdout.toString()).toContain('Login Succeeded');
    const rec = readCommandLog(deployPath).at(-1)!;
    expect(rec.argv).toEqual(['login', 'ghcr.io', '-u', 'engramia-bot', '--password-stdin']);
    const sha = createHash('sha256').update(registryToken).digest('hex');
    expect([rec.stdin?.sha256, rec.stdin?.trimmedSha256]).toContain(sha);
    expect(JSON.stringify(readCommandLog(deployPath)) + logs.join('')).not.toContain(registryToken);
  });

  it('kills the remote process group when a command times out', async () => {
    ex = new SshExecutor(target, key, log);
    setFault(deployPath, { match: ['compose', 'pull'], hang: true });
    const started = Date.now();
    const err = await rejection(ex.exec({ cwd: deployPath, argv: ['docker', 'compose', '-f', 'docker-compose.prod.yml', 'pull', 'engramia-api'] }, { timeoutMs: 1500 }));
    expect(err.code).toBe(ErrorCode.SshTimeout);
    expect(err.details.killed).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    const start = readCommandLog(deployPath).find((r: any) => r.phase === 'start' && r.argv.includes('pull'));
    expect(start?.pid).toBeGreaterThan(1);
    // sshd runs on this machine, so the host's process table is ours to check.
    expect(alive(start!.pid)).toBe(false);
    // The connection is still usable afterwards.
    expect((await ex.exec({ argv: ['echo', 'ok'] }, { timeoutMs: 10_000 })).stdout.toString()).toBe('ok\n');
  });

  it('reports a dropped connection as outcome unknown, then reconnects for the next command', async () => {
    ex = new SshExecutor(target, key, log);
    // The shell's parent is this session's sshd process: killing it drops the connection mid-command.
    const err = await rejection(ex.exec({ argv: ['sh', '-c', 'sleep 0.2; kill -9 $PPID; sleep 5'] }, { timeoutMs: 10_000 }));
    expect(err.code).toBe(ErrorCode.SshDisconnected);
    expect(err.details.started).toBe(true);
    const res = await ex.exec({ argv: ['echo', 'back'] }, { timeoutMs: 10_000 });
    expect(res.stdout.toString()).toBe('back\n');
  });

  it('refuses a host whose key does not match the pin, naming both fingerprints', async () => {
    const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    ex = new SshExecutor({ ...target, hostKeySha256: wrong }, key, log);
    const err = await rejection(ex.exec({ argv: ['true'] }, { timeoutMs: 5000 }));
    expect(err.code).toBe(ErrorCode.SshHostKeyMismatch);
    expect(err.details).toMatchObject({ expected: wrong, presented: sshd.hostKeySha256 });
  });

  it('reports a refused login and a closed port as different errors', async () => {
    const other = join(root, 'other_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    ex = new SshExecutor(target, new Secret(readFileSync(other, 'utf8'), other), log);
    expect((await rejection(ex.exec({ argv: ['true'] }, { timeoutMs: 5000 }))).code).toBe(ErrorCode.SshAuthFailed);
    await ex.close();

    ex = new SshExecutor({ ...target, port: await closedPort() }, key, log);
    const refused = await rejection(ex.exec({ argv: ['true'] }, { timeoutMs: 5000 }));
    expect(refused.code).toBe(ErrorCode.SshConnectFailed);
    expect(refused.details.reason).toBe('ECONNREFUSED');
  });
});
