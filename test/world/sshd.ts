// A real OpenSSH sshd for tests: own host key, own client key, own config, on a free loopback
// port. It logs in only the current OS user (as root that's root; as a developer it's you,
// because a non-root sshd cannot switch users), and runs commands with a controlled HOME and PATH.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findBinary, findSshd, INSTALL_COMMAND } from './requirements.js';
import {
  findFreePort,
  makeTempDir,
  ProcessExitedError,
  spawnManaged,
  tcpExchange,
  waitUntil,
  type ManagedProcess,
} from './proc.js';

const execFileAsync = promisify(execFile);

export interface StartSshdOptions {
  /** Directories put first on PATH for every SSH exec session (e.g. the simulated `docker`). */
  binDirs: string[];
  /** HOME for SSH sessions. Default: an empty directory inside the server's temp dir. */
  home?: string;
  /**
   * An existing non-root user to log in instead of the current one (only when running as root:
   * sshd must switch users). Its HOME and the authorized_keys file are made readable by it.
   */
  user?: string;
  /**
   * More variables every SSH session gets (sshd's SetEnv), e.g. DOCKER_HOST for the real-host
   * tier. HOME and PATH are set from the options above and cannot be overridden here.
   */
  env?: Record<string, string>;
}

export interface SshdServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The only user that may log in: the user running the tests. */
  readonly username: string;
  /** Unencrypted ed25519 client private key accepted by the server (mode 0600). */
  readonly privateKeyPath: string;
  /** Client public key line ("ssh-ed25519 AAAA… comment"), as in authorized_keys. */
  readonly publicKey: string;
  /** Host key fingerprint exactly as `ssh-keygen -lf` prints it: "SHA256:…". */
  readonly hostKeySha256: string;
  /** Host private key (the `HostKey` file); its public half is `${hostKeyPath}.pub`. */
  readonly hostKeyPath: string;
  /** Host public key line ("ssh-ed25519 AAAA… comment"). */
  readonly hostPublicKey: string;
  /** known_hosts line for this server: "[127.0.0.1]:PORT ssh-ed25519 AAAA…". */
  readonly knownHostsLine: string;
  /** Temp dir holding keys, config, pid file and the session HOME. */
  readonly dir: string;
  /** HOME that SSH sessions see. */
  readonly home: string;
  /** PATH that SSH sessions see. */
  readonly sessionPath: string;
  /** SIGTERM, escalating to SIGKILL after 5 s; resolves when the listener has exited. */
  stop(): Promise<void>;
  /** SIGKILL; resolves when the listener has exited. */
  kill(): Promise<void>;
  /** sshd's stderr (LogLevel VERBOSE): connections, auth decisions, errors. */
  logs(): string;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 20_000;

/** True once something on the port greets us with an SSH-2.0 banner. */
export async function sshAnswersBanner(port: number, host = HOST): Promise<boolean> {
  const banner = await tcpExchange(host, port, null, (r) => r.includes('\n'));
  return banner.startsWith('SSH-2.0-');
}

/** OpenSSH version of the sshd binary, e.g. [9, 2]; null if it can't be told. */
function sshdVersion(sshd: string): [number, number] | null {
  let out: string;
  try {
    // `sshd -V` exists since 9.0-ish; older ones print usage (with the version) and exit non-zero.
    out = execFileSync(sshd, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(out);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** sshd_config arguments are split on whitespace; quote the ones that are paths. */
function q(value: string): string {
  if (/["\n]/.test(value)) throw new Error(`unsupported character in sshd_config value: ${JSON.stringify(value)}`);
  return `"${value}"`;
}

async function keygen(file: string, comment: string): Promise<void> {
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

export async function startSshd(opts: StartSshdOptions): Promise<SshdServer> {
  const sshd = findSshd();
  if (!sshd) throw new Error(`sshd not found (looked for /usr/sbin/sshd and PATH). Install it with:\n  ${INSTALL_COMMAND}`);
  if (!findBinary('ssh-keygen')) throw new Error(`ssh-keygen not found on PATH. Install it with:\n  ${INSTALL_COMMAND}`);

  const isRoot = process.getuid?.() === 0;
  if (opts.user && !isRoot) throw new Error(`startSshd: logging in ${opts.user} needs root (sshd must switch users)`);
  const username = opts.user ?? os.userInfo().username;
  const dir = makeTempDir('engramia-sshd-');
  const home = opts.home ?? path.join(dir, 'home');
  mkdirSync(home, { recursive: true, mode: 0o700 });

  // As root, sshd refuses to start without its privilege-separation chroot dir. Debian creates
  // it from a systemd tmpfiles/init script, which never ran in a container.
  if (isRoot && !existsSync('/run/sshd')) {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    chmodSync('/run/sshd', 0o755); // mkdir's mode is filtered by the umask
  }

  const hostKeyPath = path.join(dir, 'host_ed25519');
  const privateKeyPath = path.join(dir, 'client_ed25519');
  await Promise.all([keygen(hostKeyPath, 'engramia-test-host'), keygen(privateKeyPath, 'engramia-test-client')]);
  const hostPublicKey = (await readFile(`${hostKeyPath}.pub`, 'utf8')).trim();
  const publicKey = (await readFile(`${privateKeyPath}.pub`, 'utf8')).trim();
  const authorizedKeysPath = path.join(dir, 'authorized_keys');
  await writeFile(authorizedKeysPath, `${publicKey}\n`, { mode: 0o600 });
  if (opts.user) {
    // sshd reads authorized_keys as the user; the session runs in HOME as the user. The host key stays 0600 root.
    chmodSync(dir, 0o711);
    await execFileAsync('chown', [opts.user, authorizedKeysPath, home]);
  }

  // "256 SHA256:abc… comment (ED25519)" -> "SHA256:abc…"
  const { stdout: fpOut } = await execFileAsync('ssh-keygen', ['-l', '-f', `${hostKeyPath}.pub`]);
  const hostKeySha256 = fpOut.trim().split(/\s+/)[1] ?? '';
  if (!hostKeySha256.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -l output: ${fpOut}`);

  // Simulated tools first; node's own dir so `#!/usr/bin/env node` shims work even when node
  // comes from nvm/volta and is not in /usr/bin.
  const sessionPath = [
    ...new Set([...opts.binDirs, path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin']),
  ].join(':');

  const extraEnv = Object.entries(opts.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || k === 'HOME' || k === 'PATH') throw new Error(`unsupported session variable name: ${k}`);
    return q(`${k}=${v}`);
  });

  const version = sshdVersion(sshd);
  // OpenSSH >= 9.8 penalises source addresses that fail auth or drop connections early by
  // refusing them for a while; every test connects from 127.0.0.1, and some fail on purpose.
  const hasPerSourcePenalties = version !== null && (version[0] > 9 || (version[0] === 9 && version[1] >= 8));

  const configPath = path.join(dir, 'sshd_config');
  const writeConfig = (port: number) =>
    writeFile(
      configPath,
      [
        `Port ${port}`,
        `ListenAddress ${HOST}`,
        `HostKey ${q(hostKeyPath)}`,
        `PidFile ${q(path.join(dir, 'sshd.pid'))}`,
        `AuthorizedKeysFile ${q(authorizedKeysPath)}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        // The temp dir lives under /tmp (world-writable parent), which StrictModes would reject.
        'StrictModes no',
        // PAM would need root and would pull in the machine's session stack (motd, limits, ...).
        'UsePAM no',
        `AllowUsers ${username}`,
        // Tests open many connections at once; the defaults (10:30:100, 10) start refusing them.
        'MaxStartups 100:30:200',
        'MaxSessions 100',
        'PrintMotd no',
        'PrintLastLog no',
        // The machine's ~/.ssh/rc would otherwise run before every command.
        'PermitUserRC no',
        'X11Forwarding no',
        'LogLevel VERBOSE',
        'Subsystem sftp internal-sftp',
        // Applied after sshd's own defaults, so these override HOME (normally the passwd home)
        // and PATH (normally a compiled-in default). An empty HOME keeps this machine's dotfiles
        // (~/.bashrc is sourced even by `bash -c` under sshd) out of every channel.
        `SetEnv ${[q(`HOME=${home}`), q(`PATH=${sessionPath}`), ...extraEnv].join(' ')}`,
        ...(hasPerSourcePenalties ? ['PerSourcePenalties no'] : []),
        '',
      ].join('\n'),
    );

  let proc: ManagedProcess | null = null;
  let port = await findFreePort();
  for (let attempt = 1; ; attempt++) {
    await writeConfig(port);
    // -D: stay in the foreground so we own the process; -e: log to stderr, which we capture.
    const candidate = await spawnManaged(sshd, ['-D', '-e', '-f', configPath], { cwd: dir });
    try {
      await waitUntil(() => sshAnswersBanner(port), { proc: candidate, timeoutMs: READY_TIMEOUT_MS, what: `sshd on port ${port}` });
      proc = candidate;
      break;
    } catch (err) {
      await candidate.terminate('SIGKILL');
      // Lost the race for the probed port to someone else: take another one.
      const inUse = err instanceof ProcessExitedError && /address already in use/i.test(err.output);
      if (!inUse || attempt >= 5) throw err;
      port = await findFreePort();
    }
  }
  const server = proc;

  return {
    host: HOST,
    port,
    username,
    privateKeyPath,
    publicKey,
    hostKeySha256,
    hostKeyPath,
    hostPublicKey,
    knownHostsLine: `[${HOST}]:${port} ${hostPublicKey}`,
    dir,
    home,
    sessionPath,
    // Note: this ends the listener only. Established connections live in their own sshd
    // processes (sshd setsid()s them) and end when their clients disconnect.
    stop: async () => {
      await server.terminate('SIGTERM', 5_000);
    },
    kill: async () => {
      await server.terminate('SIGKILL');
    },
    logs: () => server.logs.toString(),
  };
}
