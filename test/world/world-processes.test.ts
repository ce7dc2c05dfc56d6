// Tests for the test world's process layer (test/world/redis.ts, sshd.ts). They start their own
// servers instead of using the global ones, because they stop, kill and restart them.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from './proc.js';
import { startRedis, type RedisServer } from './redis.js';
import { findBinary, requireBinaries } from './requirements.js';
import { startSshd, type SshdServer } from './sshd.js';

const execFileAsync = promisify(execFile);

beforeAll(() => {
  requireBinaries();
});

// ---------------------------------------------------------------------------------------------
// A minimal RESP client, enough for PING/SET/GET, so these tests don't depend on ioredis.

type RespValue = string | number | null;

function redisCommand(port: number, ...args: string[]): Promise<RespValue> {
  const request = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(5_000, () => socket.destroy(new Error('redis command timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const lineEnd = buf.indexOf('\r\n');
      if (lineEnd < 0) return;
      const type = String.fromCharCode(buf[0]!);
      const line = buf.subarray(1, lineEnd).toString();
      let value: RespValue;
      if (type === '+') value = line;
      else if (type === ':') value = Number(line);
      else if (type === '-') {
        socket.destroy();
        reject(new Error(`redis error: ${line}`));
        return;
      } else if (type === '$') {
        const len = Number(line);
        if (len < 0) value = null;
        else if (buf.length < lineEnd + 2 + len + 2) return; // wait for the rest of the bulk string
        else value = buf.subarray(lineEnd + 2, lineEnd + 2 + len).toString();
      } else {
        socket.destroy();
        reject(new Error(`unsupported RESP reply: ${buf.toString()}`));
        return;
      }
      socket.destroy();
      resolve(value);
    });
  });
}

function portAcceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------------------------------------

describe('startRedis', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('starts on a free loopback port and answers PING; stop() shuts it down', async () => {
    const redis = await startRedis();
    servers.push(redis);
    expect(redis.host).toBe('127.0.0.1');
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await redisCommand(redis.port, 'PING')).toBe('PONG');
    // The settings the rest of the suite (BullMQ) relies on.
    expect(await redisCommand(redis.port, 'INFO', 'memory')).toMatch(/maxmemory_policy:noeviction/);

    await redis.stop();
    expect(await portAcceptsConnections(redis.port)).toBe(false);
  });

  it('two instances get different ports', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    servers.push(a, b);
    expect(a.port).not.toBe(b.port);
    await redisCommand(a.port, 'SET', 'who', 'a');
    expect(await redisCommand(b.port, 'GET', 'who')).toBeNull();
  });

  it('with appendonly, data survives restart() and kill() + restart() on the same port', async () => {
    const redis = await startRedis({ appendonly: true });
    servers.push(redis);
    expect(await redisCommand(redis.port, 'SET', 'deploy:1', 'running')).toBe('OK');

    await redis.restart();
    expect(await redisCommand(redis.port, 'GET', 'deploy:1')).toBe('running');

    // A SIGKILL loses only what is not yet write()n; redis writes the AOF before replying, and
    // the page cache survives a process crash, so this key must be back too.
    expect(await redisCommand(redis.port, 'SET', 'deploy:2', 'queued')).toBe('OK');
    await redis.kill();
    expect(await portAcceptsConnections(redis.port)).toBe(false);
    await redis.restart();
    expect(await redisCommand(redis.port, 'GET', 'deploy:2')).toBe('queued');
    expect(redis.logs()).toMatch(/Ready to accept connections/);
  });

  it('without appendonly, restart() starts empty', async () => {
    const redis = await startRedis({ appendonly: false });
    servers.push(redis);
    await redisCommand(redis.port, 'SET', 'k', 'v');
    await redis.restart();
    expect(await redisCommand(redis.port, 'GET', 'k')).toBeNull();
  });

  it('fails with redis output when the port is taken by something else', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startRedis({ port })).rejects.toThrow(/address already in use/i);
    } finally {
      blocker.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('startSshd', () => {
  let sshd: SshdServer;
  let work: string;
  let binDir: string;
  let knownHosts: string;

  /** The real OpenSSH client, isolated from the developer's ~/.ssh/config, agent and known_hosts. */
  const ssh = (command: string, opts: { knownHostsFile?: string; identity?: string } = {}) =>
    execFileAsync(
      'ssh',
      [
        '-F', '/dev/null',
        '-i', opts.identity ?? sshd.privateKeyPath,
        '-p', String(sshd.port),
        '-o', 'IdentitiesOnly=yes',
        '-o', 'IdentityAgent=none',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', `UserKnownHostsFile=${opts.knownHostsFile ?? knownHosts}`,
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'BatchMode=yes',
        '-o', 'ConnectTimeout=10',
        `${sshd.username}@127.0.0.1`,
        command,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );

  beforeAll(async () => {
    if (!findBinary('ssh')) throw new Error('these tests need the OpenSSH client: sudo apt-get install -y openssh-client');
    work = makeTempDir('engramia-sshd-test-');
    binDir = path.join(work, 'bin');
    mkdirSync(binDir);
    // Stand-in for the simulated docker that test/world/sim/bin will provide.
    writeFileSync(path.join(binDir, 'docker'), '#!/bin/sh\necho "fake docker $*"\n', { mode: 0o755 });
    sshd = await startSshd({ binDirs: [binDir] });
    knownHosts = path.join(work, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it('its client key (made by ssh-keygen) is private already, as the bot\'s config check demands (mode 0600)', () => {
    expect(statSync(sshd.privateKeyPath).mode & 0o077).toBe(0);
  });

  it('exposes keys and a host key fingerprint in ssh-keygen format', async () => {
    expect(sshd.host).toBe('127.0.0.1');
    expect(sshd.hostKeySha256).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(sshd.publicKey).toMatch(/^ssh-ed25519 /);
    expect(sshd.hostPublicKey).toMatch(/^ssh-ed25519 /);
    expect(sshd.knownHostsLine).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}`);
    const { stdout } = await execFileAsync('ssh-keygen', ['-l', '-f', `${sshd.hostKeyPath}.pub`], { encoding: 'utf8' });
    expect(stdout.split(/\s+/)[1]).toBe(sshd.hostKeySha256);
  });

  it('runs commands over ssh with the configured HOME and PATH (SetEnv)', async () => {
    const { stdout } = await ssh('echo "$HOME"; echo "$PATH"; command -v docker; docker ps -a');
    const [home, pathVar, dockerPath, dockerOut] = stdout.trimEnd().split('\n');
    expect(home).toBe(sshd.home);
    expect(pathVar).toBe(sshd.sessionPath);
    expect(pathVar!.startsWith(`${binDir}:`)).toBe(true);
    expect(pathVar!.split(':')).toContain(path.dirname(process.execPath));
    expect(dockerPath).toBe(path.join(binDir, 'docker'));
    expect(dockerOut).toBe('fake docker ps -a');
    expect(sshd.logs()).toMatch(/Accepted publickey for /);
  });

  it('passes exit codes and stderr through', async () => {
    await expect(ssh('echo oops >&2; exit 3')).rejects.toMatchObject({ code: 3, stderr: expect.stringContaining('oops') });
  });

  it('sequential connections are cheap (timing logged, not asserted)', { timeout: 120_000 }, async () => {
    const runs = 10;
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await ssh('true');
      times.push(performance.now() - t0);
    }
    const total = times.reduce((a, b) => a + b, 0);
    console.log(
      `[world] ${runs} sequential 'ssh … true': total ${total.toFixed(0)} ms, ` +
        `mean ${(total / runs).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms`,
    );
  });

  it('the ssh client rejects the server when known_hosts has a different key', async () => {
    const other = path.join(work, 'other_host_key');
    await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const { stdout: otherPub } = await execFileAsync('cat', [`${other}.pub`], { encoding: 'utf8' });
    const wrongKnownHosts = path.join(work, 'known_hosts_wrong');
    writeFileSync(wrongKnownHosts, `[127.0.0.1]:${sshd.port} ${otherPub.trim()}\n`);

    await expect(ssh('echo should-not-run', { knownHostsFile: wrongKnownHosts })).rejects.toMatchObject({
      code: 255,
      stdout: '',
      stderr: expect.stringMatching(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/),
    });
  });

  it('rejects a client key that is not authorized', async () => {
    const stranger = path.join(work, 'stranger_key');
    await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    await expect(ssh('echo should-not-run', { identity: stranger })).rejects.toMatchObject({
      code: 255,
      stderr: expect.stringMatching(/Permission denied/),
    });
  });

  it('stop() ends the listener process', async () => {
    const own = await startSshd({ binDirs: [] });
    expect(await portAcceptsConnections(own.port)).toBe(true);
    const pid = Number(readFileSync(path.join(own.dir, 'sshd.pid'), 'utf8').trim());
    await own.stop();
    // Checked by process, not by port: under parallel tests another server may take the freed port at once.
    const state = (() => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      } catch {
        return 'gone';
      }
    })();
    expect(['gone', 'Z', 'X']).toContain(state);
    expect(own.logs()).toMatch(/Server listening on 127\.0\.0\.1 port/);
  });
});
