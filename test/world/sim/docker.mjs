// Simulated `docker` CLI for the Engramia test host. Runs once per invocation with
// cwd = the deploy dir, reads and writes `.sim/state.json` (see host.mjs), and
// answers with the output and exit codes of real docker 27 / compose v2.29 as
// closely as the bot could notice.
//
// Deliberately synchronous: one short critical section per command under the state
// lock, output flushed with writeSync after the lock is released (a reader that
// stops reading must not block other docker calls).

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';
import {
  API_IMAGE_REPO,
  API_SERVICE,
  DB_SERVICE,
  DEFAULT_DB_SIZE_BYTES,
  PROXY_SERVICE,
  apiContainerTag,
  apiStartupLogs,
  appendCommandRecord,
  imageIdFor,
  imageMigrations,
  isRunning,
  parseDotenv,
  pgDumpBytes,
  readState,
  sha256,
  sleepSync,
  truthyMaintenance,
  withLock,
  writeStateUnlocked,
} from './host.mjs';

/** @typedef {import('./host.mjs').SimState} SimState */
/** @typedef {import('./host.mjs').Container} Container */
/** @typedef {import('./host.mjs').LocalImage} LocalImage */
/** @typedef {import('./host.mjs').Fault} Fault */
/** @typedef {import('./host.mjs').ServiceDef} ServiceDef */

/** Compose 2.26's exit code for a failed `pull` (a missing tag, no credentials), as the real-host tier shows. */
const COMPOSE_PULL_FAILED = 18;

const COMPOSE_VERSION = '2.29.1';
const DOCKER_VERSION = '27.3.1';

/** `docker --config DIR`: the client's config folder for this invocation. @type {string | null} */
let configDirOverride = null;

// ---------------------------------------------------------------------------
// Output plumbing
// ---------------------------------------------------------------------------

class Exit extends Error {
  /** @param {number} code */
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}

class Out {
  constructor() {
    /** @type {Buffer[]} */
    this.stdout = [];
    /** @type {Buffer[]} */
    this.stderr = [];
    /** Merge stderr into stdout and turn \n into \r\n, as a docker exec TTY would. */
    this.tty = false;
    /** Keep the process alive after output (logs -f). */
    this.hangAfter = false;
    /** Prefix for compose progress lines (--dry-run). */
    this.progressPrefix = '';
  }
  /** @param {string | Buffer} s */
  out(s) {
    this.stdout.push(typeof s === 'string' ? Buffer.from(s) : s);
  }
  /** @param {string | Buffer} s */
  err(s) {
    this.stderr.push(typeof s === 'string' ? Buffer.from(s) : s);
  }
  /** Compose progress goes to stderr, one line each, like `--progress plain`. @param {string} line */
  progress(line) {
    this.err(`${this.progressPrefix} ${line}\n`);
  }
  /** @param {string} msg @param {number} [code] @returns {never} */
  fail(msg, code = 1) {
    this.err(msg.endsWith('\n') ? msg : msg + '\n');
    throw new Exit(code);
  }
}

/** @param {number} fd @param {Buffer} buf */
function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code === 'EAGAIN') {
        sleepSync(1);
        continue;
      }
      return; // EPIPE and friends: the reader is gone, like docker we just stop writing
    }
  }
}

/** @param {Out} o */
function flush(o) {
  if (o.tty) {
    const merged = Buffer.concat([...o.stdout, ...o.stderr]);
    const bytes = [];
    for (const b of merged) {
      if (b === 0x0a) bytes.push(0x0d);
      bytes.push(b);
    }
    writeAll(1, Buffer.from(bytes));
    return;
  }
  if (o.stdout.length) writeAll(1, Buffer.concat(o.stdout));
  if (o.stderr.length) writeAll(2, Buffer.concat(o.stderr));
}

function readAllStdin() {
  /** @type {Buffer[]} */
  const chunks = [];
  const b = Buffer.alloc(65536);
  for (;;) {
    let n = 0;
    try {
      n = readSync(0, b, 0, b.length, null);
    } catch (e) {
      const code = /** @type {NodeJS.ErrnoException} */ (e).code;
      if (code === 'EAGAIN') {
        sleepSync(5);
        continue;
      }
      break; // EOF / closed fd
    }
    if (n === 0) break;
    chunks.push(Buffer.from(b.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

function hangForever() {
  // "Forever" for a test run; the process stays killable by any signal meanwhile.
  for (let i = 0; i < 3600; i++) sleepSync(1000);
  process.exit(124);
}

// ---------------------------------------------------------------------------
// Formatting helpers (mirroring docker's go-units)
// ---------------------------------------------------------------------------

/** go-units HumanDuration. @param {number} ms */
function humanDuration(ms) {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** go-units HumanSizeWithPrecision (decimal units). @param {number} size */
function humanSize(size, precision = 4) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${parseFloat(size.toPrecision(precision))}${units[i]}`;
}

/** Go's time.Time String() as docker prints it. @param {string} iso */
function goTime(iso) {
  return `${iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '')} +0000 UTC`;
}

/**
 * Tiny subset of Go templates: {{.A.B}}, {{json .}}, {{json .A}}; literal \t and \n
 * are unescaped like the docker CLI does.
 * @param {string} tpl @param {Record<string, any>} obj
 */
function renderTemplate(tpl, obj) {
  const body = tpl.replace(/^table\s+/, '').replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return body.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_, json, path) => {
    /** @type {any} */
    let v = obj;
    for (const k of String(path).split('.').filter(Boolean)) v = v == null ? undefined : v[k];
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

/** @param {string[][]} rows */
function table(rows) {
  const widths = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3))).join('').trimEnd() + '\n').join('');
}

/**
 * Split `--flag=value`; returns [flag, value | undefined].
 * @param {string} a @returns {[string, string | undefined]}
 */
function splitEq(a) {
  if (a.startsWith('--')) {
    const i = a.indexOf('=');
    if (i !== -1) return [a.slice(0, i), a.slice(i + 1)];
  }
  return [a, undefined];
}

/** @param {string} s */
function shortId(s) {
  return s.replace(/^sha256:/, '').slice(0, 12);
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

const argv = process.argv.slice(2);
const cwd = process.cwd();
/**
 * Set in the process that does a command's work inside the container when its client can die
 * without it (a fault's `inContainerMs`): the client's pid and start, so the host's record shows one command.
 * @type {{ clientPid: number, t0: number, delayMs: number } | null}
 */
const containerSide = process.env.SIM_CONTAINER_SIDE ? JSON.parse(process.env.SIM_CONTAINER_SIDE) : null;
const t0 = containerSide?.t0 ?? Date.now();

main();

function main() {
  if (!existsSync(join(cwd, '.sim', 'state.json'))) {
    writeAll(2, Buffer.from(`simulated docker: no .sim/state.json in ${cwd}\n`));
    process.exit(125);
  }
  const deployPath = cwd;

  // stdin is read only by commands that consume it; anything else must never block on it.
  const takesStdin = argv[0] === 'login' && argv.includes('--password-stdin');
  const stdin = takesStdin ? readAllStdin() : null;

  const tagVariable = readState(deployPath).tagVariable;
  /** @type {Record<string, string | null>} */
  const env = { [tagVariable]: process.env[tagVariable] ?? null };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('ENGRAMIA_') && v !== undefined) env[k] = v;
  if (process.env.DOCKER_CONFIG !== undefined) env.DOCKER_CONFIG = process.env.DOCKER_CONFIG;

  const base = {
    ts: new Date(t0).toISOString(),
    pid: containerSide?.clientPid ?? process.pid,
    argv,
    cwd,
    env,
    stdin: stdin
      ? { bytes: stdin.length, sha256: sha256(stdin), trimmedSha256: sha256(trimPassword(stdin.toString('utf8'))) }
      : null,
  };
  /** @param {number | null} exitCode @param {'start' | 'end' | 'executed'} phase @param {Record<string, unknown>} [extra] */
  const record = (exitCode, phase, extra = {}) =>
    appendCommandRecord(deployPath, { ...base, exitCode, durationMs: Date.now() - t0, phase, ...extra });
  /** @param {number} code @returns {never} */
  const finish = (code) => {
    if (containerSide) registerContainerProcess(deployPath, false);
    record(code, 'end');
    process.exit(code);
  };

  if (containerSide) {
    registerContainerProcess(deployPath, true);
    sleepSync(containerSide.delayMs);
  }
  const fault = containerSide ? null : takeFault(deployPath);
  if (fault?.inContainerMs !== undefined) {
    record(null, 'start', { fault: fault.match });
    process.exit(runOutlivingClient(deployPath, fault.inContainerMs));
  }
  if (fault) {
    if (fault.hang || fault.delayMs || fault.hangAfter) record(null, 'start', { fault: fault.match });
    if (fault.hang) hangForever();
    if (fault.delayMs) sleepSync(fault.delayMs);
    if (fault.exitCode !== undefined) {
      if (fault.stdout) writeAll(1, Buffer.from(fault.stdout));
      if (fault.stderr) writeAll(2, Buffer.from(fault.stderr));
      finish(fault.exitCode);
    }
    // No exitCode: the fault's output is extra noise before the real command runs.
    if (fault.stdout) writeAll(1, Buffer.from(fault.stdout));
    if (fault.stderr) writeAll(2, Buffer.from(fault.stderr));
  }

  const o = new Out();
  /** @type {number} */
  let code;
  try {
    code = withLock(deployPath, () => {
      const state = readState(deployPath);
      const before = JSON.stringify(state);
      const ctx = { argv, cwd, stdin, dryRun: false };
      let c;
      try {
        c = dispatch(state, ctx, o);
      } catch (e) {
        if (!(e instanceof Exit)) throw e;
        c = e.code;
      }
      // Partial effects of a failed command (an image pulled before `up` failed) persist, like on a real host.
      if (!ctx.dryRun && JSON.stringify(state) !== before) writeStateUnlocked(deployPath, state);
      return c;
    });
  } catch (e) {
    o.err(`simulated docker: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    code = 125;
  }
  flush(o);
  if (fault?.hangAfter || o.hangAfter) {
    record(code, 'executed');
    hangForever();
  }
  finish(code);
}

/**
 * `docker compose exec`'s work goes on inside the container when its client dies (killed, or SIGPIPE
 * once its SSH channel is gone): this client hands the command to a process in its own session,
 * which the client's process group does not include, waits for it and relays its output and status.
 * @param {string} deployPath @param {number} delayMs @returns {number}
 */
function runOutlivingClient(deployPath, delayMs) {
  const dir = join(deployPath, '.sim', 'procs');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${process.pid}.out`);
  const err = join(dir, `${process.pid}.err`);
  const side = JSON.stringify({ clientPid: process.pid, t0, delayMs });
  const r = spawnSync('setsid', [process.execPath, fileURLToPath(import.meta.url), ...argv], {
    cwd,
    env: { ...process.env, SIM_CONTAINER_SIDE: side },
    stdio: ['ignore', openSync(out, 'w'), openSync(err, 'w')],
  });
  writeAll(1, readFileSync(out));
  writeAll(2, readFileSync(err));
  return r.status ?? 125;
}

/**
 * Lists (or removes) this container-side process in the state, for `docker top`.
 * @param {string} deployPath @param {boolean} add
 */
function registerContainerProcess(deployPath, add) {
  withLock(deployPath, () => {
    const state = readState(deployPath);
    const procs = (state.containerProcs ?? []).filter((p) => p.pid !== process.pid);
    const svc = argv.indexOf(API_SERVICE);
    if (add) procs.push({ pid: process.pid, container: state.containers[API_SERVICE]?.id ?? '', cmd: argv.slice(svc + 1).join(' ') });
    state.containerProcs = procs;
    writeStateUnlocked(deployPath, state);
  });
}

/** @param {string} s */
function trimPassword(s) {
  // docker login strips one trailing newline (and a CR before it) from --password-stdin
  return s.replace(/\r?\n$/, '');
}

/** @param {string} deployPath @returns {Fault | null} */
function takeFault(deployPath) {
  const joined = argv.join(' ');
  return withLock(deployPath, () => {
    const state = readState(deployPath);
    const i = state.faults.findIndex((f) => (Array.isArray(f.match) ? f.match : [f.match]).every((m) => joined.includes(m)));
    if (i === -1) return null;
    const f = /** @type {Fault} */ (state.faults[i]);
    if (typeof f.times === 'number') {
      f.times -= 1;
      if (f.times <= 0) state.faults.splice(i, 1);
    }
    writeStateUnlocked(deployPath, state);
    return f;
  });
}

// ---------------------------------------------------------------------------
// docker
// ---------------------------------------------------------------------------

/** @typedef {{ argv: string[], cwd: string, stdin: Buffer | null, dryRun: boolean }} Ctx */

/** @param {SimState} state @param {Ctx} ctx @param {Out} o @returns {number} */
function dispatch(state, ctx, o) {
  const args = [...ctx.argv];
  while (args.length && /** @type {string} */ (args[0]).startsWith('-')) {
    const [flag] = splitEq(/** @type {string} */ (args[0]));
    if (flag === '--version' || flag === '-v') {
      o.out(`Docker version ${DOCKER_VERSION}, build ce12230\n`);
      return 0;
    }
    if (flag === '--help' || flag === '-h') {
      o.out('\nUsage:  docker [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n');
      return 0;
    }
    if (['-D', '--debug', '--tls', '--tlsverify'].includes(flag) || args[0]?.includes('=')) {
      args.shift();
      continue;
    }
    if (flag === '--config') {
      configDirOverride = args[1] ?? null;
      args.splice(0, 2);
      continue;
    }
    if (['-c', '--context', '-H', '--host', '-l', '--log-level', '--tlscacert', '--tlscert', '--tlskey'].includes(flag)) {
      args.splice(0, 2);
      continue;
    }
    o.fail(`unknown flag: ${args[0]}\nSee 'docker --help'.`, 125);
  }
  const cmd = args.shift();
  switch (cmd) {
    case undefined:
      o.out('\nUsage:  docker [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n');
      return 0;
    case 'version':
      return dockerVersion(args, o);
    case 'login':
      return login(state, args, ctx, o);
    case 'logout':
      return logout(state, args, o);
    case 'compose':
      if (!composePluginFound(state)) return o.fail(`docker: 'compose' is not a docker command.\nSee 'docker --help'`);
      return compose(state, args, ctx, o);
    case 'images':
      return imageLs(state, args, o);
    case 'inspect':
      return inspect(state, args, o);
    case 'top':
      return top(state, args, o);
    case 'image': {
      const sub = args.shift();
      if (sub === 'prune') return imagePrune(state, args, o);
      if (sub === 'ls' || sub === 'list') return imageLs(state, args, o);
      return o.fail(`docker: 'image ${sub ?? ''}' is not a docker command.\nSee 'docker --help'`);
    }
    default:
      return o.fail(`docker: '${cmd}' is not a docker command.\nSee 'docker --help'`);
  }
}

/** @param {number} pid */
function alive(pid) {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
  return st !== 'Z' && st !== 'X';
}

/**
 * `docker top CONTAINER`: the container's processes as the host's `ps -ef` sees them (the daemon's
 * default), padded like the CLI's table. Its main process, and any command left running in it.
 * @param {SimState} state @param {string[]} args @param {Out} o
 */
function top(state, args, o) {
  const ref = args.shift();
  if (!ref) o.fail('"docker top" requires at least 1 argument.\nSee \'docker top --help\'.\n\nUsage:  docker top CONTAINER [ps OPTIONS]\n\nDisplay the running processes of a container');
  const all = [...Object.values(state.containers), ...(state.oneOffs ?? [])];
  const c = all.find((x) => x.id.startsWith(ref) || x.name === ref);
  if (!c) o.fail(`Error response from daemon: No such container: ${ref}`);
  if (c.state !== 'running') o.fail(`Error response from daemon: Container ${c.id} is not running`);
  const main = 4000 + (parseInt(c.id.slice(0, 4), 16) % 5000);
  const since = goTime(c.startedAt ?? c.createdAt).slice(11, 16);
  const row = (/** @type {string[]} */ cols) => cols.map((x, i) => (i < cols.length - 1 ? x.padEnd(20) : x)).join('');
  const lines = [row(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'])];
  lines.push(row(['root', String(main), String(main - 21), '0', since, '?', '00:00:01', c.command ?? state.services[c.service]?.command ?? 'sh']));
  for (const p of state.containerProcs ?? []) {
    if (p.container === c.id && alive(p.pid)) lines.push(row(['root', String(p.pid), String(main - 21), '0', since, '?', '00:00:00', `/usr/bin/python3 /usr/bin/${p.cmd}`]));
  }
  o.out(lines.join('\n') + '\n');
  return 0;
}

/**
 * `docker inspect [--format TPL] CONTAINER…`, for containers only: RestartCount and State, which a
 * crash loop shows even in the second its container runs.
 * @param {SimState} state @param {string[]} args @param {Out} o
 */
function inspect(state, args, o) {
  let format = null;
  const names = [];
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-f' || flag === '--format') format = val ?? args.shift() ?? '';
    else if (flag === '--type') args.shift();
    else if (a.startsWith('-')) o.fail(`unknown flag: ${a}\nSee 'docker inspect --help'.`, 125);
    else names.push(a);
  }
  if (!names.length) o.fail('"docker inspect" requires at least 1 argument.\nSee \'docker inspect --help\'.');
  const all = [...Object.values(state.containers), ...(state.oneOffs ?? [])];
  const found = names.map((n) => all.find((c) => c && (c.id.startsWith(n) || c.name === n)));
  const objs = found.map((c) =>
    c ? { Id: c.id, Name: `/${c.name}`, RestartCount: c.restartCount ?? 0, State: { Status: c.state, Running: c.state === 'running' || c.state === 'restarting', Restarting: c.state === 'restarting', ExitCode: c.exitCode, StartedAt: c.startedAt, FinishedAt: c.finishedAt } } : null,
  );
  const shown = objs.filter(Boolean);
  if (format !== null) o.out(shown.map((x) => renderTemplate(format, /** @type {any} */ (x)) + '\n').join(''));
  else o.out(JSON.stringify(shown, null, 4) + '\n');
  const missing = names.filter((_, i) => !found[i]);
  if (missing.length) o.fail(missing.map((n) => `Error: No such object: ${n}`).join('\n'));
  return 0;
}

/** @param {string[]} args @param {Out} o */
function dockerVersion(args, o) {
  const info = {
    Client: { Platform: { Name: 'Docker Engine - Community' }, Version: DOCKER_VERSION, ApiVersion: '1.47', GoVersion: 'go1.22.7', GitCommit: 'ce12230', Os: 'linux', Arch: 'amd64', Context: 'default' },
    Server: { Platform: { Name: 'Docker Engine - Community' }, Version: DOCKER_VERSION, ApiVersion: '1.47', MinAPIVersion: '1.24', GoVersion: 'go1.22.7', GitCommit: '41ca978', Os: 'linux', Arch: 'amd64' },
  };
  const fi = args.findIndex((a) => a === '--format' || a === '-f' || a.startsWith('--format='));
  if (fi !== -1) {
    const tpl = args[fi]?.startsWith('--format=') ? args[fi].slice(9) : (args[fi + 1] ?? '');
    o.out(renderTemplate(tpl, info) + '\n');
    return 0;
  }
  o.out(`Client: Docker Engine - Community
 Version:           ${DOCKER_VERSION}
 API version:       1.47
 Go version:        go1.22.7
 Git commit:        ce12230
 Built:             Fri Sep 20 11:41:00 2024
 OS/Arch:           linux/amd64
 Context:           default

Server: Docker Engine - Community
 Engine:
  Version:          ${DOCKER_VERSION}
  API version:      1.47 (minimum version 1.24)
  Go version:       go1.22.7
  Git commit:       41ca978
  Built:            Fri Sep 20 11:41:00 2024
  OS/Arch:          linux/amd64
  Experimental:     false
 containerd:
  Version:          1.7.22
  GitCommit:        7f7fdf5fed64eb6a7caf99b3e12efcf9d60e311c
 runc:
  Version:          1.1.14
  GitCommit:        v1.1.14-0-g2c9f560
 docker-init:
  Version:          0.19.0
  GitCommit:        de40ad0
`);
  return 0;
}

/** @param {SimState} state @param {string[]} args @param {Ctx} ctx @param {Out} o */
function login(state, args, ctx, o) {
  /** @type {string | null} */
  let user = null;
  /** @type {string | null} */
  let password = null;
  let passwordStdin = false;
  /** @type {string | null} */
  let server = null;
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-u' || flag === '--username') user = val ?? args.shift() ?? '';
    else if (flag === '-p' || flag === '--password') password = val ?? args.shift() ?? '';
    else if (flag === '--password-stdin') passwordStdin = true;
    else if (a.startsWith('-')) o.fail(`unknown flag: ${a}\nSee 'docker login --help'.`, 125);
    else server = a;
  }
  if (password !== null) o.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (password !== null && passwordStdin) o.fail('--password and --password-stdin are mutually exclusive');
  if (passwordStdin) {
    if (!user) o.fail('Must provide --username with --password-stdin');
    password = trimPassword((ctx.stdin ?? Buffer.alloc(0)).toString('utf8'));
  }
  const host = server ?? 'https://index.docker.io/v1/';
  if (password === null) o.fail('Error: Cannot perform an interactive login from a non TTY device');
  if (host.replace(/^https?:\/\//, '').replace(/\/.*$/, '') !== state.registry.host) {
    const h = host.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    o.fail(`Error response from daemon: Get "https://${h}/v2/": unauthorized: incorrect username or password`);
  }
  const userOk = state.registry.username === null || state.registry.username === user;
  if (password !== state.registry.token || !userOk || !password) {
    // A failed login leaves credentials stored earlier in place, as docker does.
    o.fail(`Error response from daemon: Get "https://${state.registry.host}/v2/": denied: denied`);
  }
  const file = join(dockerConfigDir(), 'config.json');
  const config = readDockerConfig();
  config.auths = { ...(config.auths ?? {}), [state.registry.host]: { auth: Buffer.from(`${user ?? ''}:${password}`).toString('base64') } };
  writeDockerConfig(config);
  o.err(
    `WARNING! Your password will be stored unencrypted in ${file}.\n` +
      'Configure a credential helper to remove this warning. See\n' +
      'https://docs.docker.com/engine/reference/commandline/login/#credential-stores\n\n',
  );
  o.out('Login Succeeded\n');
  return 0;
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function logout(state, args, o) {
  const host = args.find((a) => !a.startsWith('-')) ?? 'https://index.docker.io/v1/';
  const config = readDockerConfig();
  if (!config.auths?.[host]) {
    o.out(`Not logged in to ${host}\n`);
    return 0;
  }
  delete config.auths[host];
  writeDockerConfig(config);
  o.out(`Removing login credentials for ${host}\n`);
  return 0;
}

// --- the docker client's config folder ---------------------------------------

/** Where the docker CLI keeps config.json and looks for user CLI plugins: --config, $DOCKER_CONFIG, else ~/.docker. */
function dockerConfigDir() {
  return configDirOverride ?? (process.env.DOCKER_CONFIG || join(process.env.HOME ?? '/nonexistent', '.docker'));
}

/** @returns {{ auths?: Record<string, { auth?: string }>, [k: string]: unknown }} */
function readDockerConfig() {
  const file = join(dockerConfigDir(), 'config.json');
  if (!existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** As the real CLI saves it: folder 0700, file 0600, written to a temp file and renamed. @param {object} config */
function writeDockerConfig(config) {
  const dir = dockerConfigDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `config.json${process.pid}`);
  writeFileSync(tmp, JSON.stringify(config, null, '\t'), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, join(dir, 'config.json'));
}

/** The credential the client would send to the registry: what `login` stored in the config in effect. @param {SimState} state */
function authorized(state) {
  const auth = readDockerConfig().auths?.[state.registry.host]?.auth;
  if (!auth) return false;
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const user = decoded.slice(0, i);
  return decoded.slice(i + 1) === state.registry.token && (state.registry.username === null || state.registry.username === user);
}

/**
 * Compose is a CLI plugin: the client looks in <config dir>/cli-plugins, then the system folders.
 * Installed per user (`composePlugin: 'user'`), it exists only in ~/.docker/cli-plugins, so a
 * DOCKER_CONFIG pointing elsewhere hides it unless that folder links to it.
 * @param {SimState} state
 */
function composePluginFound(state) {
  if ((state.composePlugin ?? 'system') === 'system') return true;
  return existsSync(join(dockerConfigDir(), 'cli-plugins', 'docker-compose'));
}

/** @param {LocalImage} img */
function imageRow(img) {
  return {
    Containers: 'N/A',
    CreatedAt: goTime(img.createdAt),
    CreatedSince: `${humanDuration(Date.now() - Date.parse(img.createdAt))} ago`,
    Digest: img.digest ?? '<none>',
    ID: shortId(img.id),
    Repository: img.repository ?? '<none>',
    SharedSize: 'N/A',
    Size: humanSize(img.sizeBytes, 3),
    Tag: img.tag ?? '<none>',
    UniqueSize: 'N/A',
    VirtualSize: humanSize(img.sizeBytes, 3),
  };
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function imageLs(state, args, o) {
  let quiet = false;
  /** @type {string | null} */
  let format = null;
  /** @type {string | null} */
  let ref = null;
  let danglingOnly = false;
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-q' || flag === '--quiet') quiet = true;
    else if (flag === '-a' || flag === '--all' || flag === '--digests' || flag === '--no-trunc') continue;
    else if (flag === '--format') format = val ?? args.shift() ?? '';
    else if (flag === '-f' || flag === '--filter') danglingOnly = (val ?? args.shift()) === 'dangling=true';
    else ref = a;
  }
  let images = state.images;
  if (danglingOnly) images = images.filter((i) => i.tag === null);
  if (ref) {
    const [repo, tag] = ref.includes(':') ? ref.split(':') : [ref, undefined];
    images = images.filter((i) => i.repository === repo && (tag === undefined || i.tag === tag));
  }
  if (quiet) {
    o.out([...new Set(images.map((i) => shortId(i.id)))].map((id) => id + '\n').join(''));
    return 0;
  }
  const rows = images.map(imageRow);
  if (format) {
    o.out(rows.map((r) => renderTemplate(format ?? '', r) + '\n').join(''));
    return 0;
  }
  o.out(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size])]));
  return 0;
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function imagePrune(state, args, o) {
  let force = false;
  let all = false;
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-f' || flag === '--force') force = true;
    else if (flag === '-a' || flag === '--all') all = true;
    else if (flag === '--filter') {
      if (val === undefined) args.shift();
    } else o.fail(`unknown flag: ${a}\nSee 'docker image prune --help'.`, 125);
  }
  if (!force) {
    // docker would now read y/N from stdin; over a non-interactive channel that is a
    // refusal, and reading could block, so answer "no" without reading.
    o.out(
      all
        ? 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] '
        : 'WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ',
    );
    return 0;
  }
  // `-f` alone removes dangling (untagged) images only; a previous release's tagged
  // image survives until `-a`. Images used by any container (even stopped) stay.
  const used = new Set([...Object.values(state.containers), ...(state.oneOffs ?? [])].map((c) => c.imageId));
  const victims = state.images.filter((i) => !used.has(i.id) && (all || i.tag === null));
  if (!victims.length) {
    o.out('Total reclaimed space: 0B\n');
    return 0;
  }
  let lines = 'Deleted Images:\n';
  let total = 0;
  for (const img of victims) {
    if (img.tag) lines += `untagged: ${img.repository}:${img.tag}\n`;
    if (img.digest && img.repository) lines += `untagged: ${img.repository}@${img.digest}\n`;
    lines += `deleted: ${img.id}\n`;
    lines += `deleted: sha256:${sha256(`layer:${img.id}:1`)}\n`;
    lines += `deleted: sha256:${sha256(`layer:${img.id}:2`)}\n`;
    total += img.sizeBytes;
  }
  state.images = state.images.filter((i) => !victims.includes(i));
  o.out(`${lines}\nTotal reclaimed space: ${humanSize(total)}\n`);
  return 0;
}

// ---------------------------------------------------------------------------
// docker compose
// ---------------------------------------------------------------------------

/**
 * @typedef {{
 *   files: string[], envFile: string | null, dryRun: boolean,
 *   text: string, vars: Record<string, string>,
 *   tag: string, apiRef: string, containerEnv: Record<string, string>,
 * }} Project
 */

/** @param {SimState} state @param {string[]} args @param {Ctx} ctx @param {Out} o */
function compose(state, args, ctx, o) {
  /** @type {string[]} */
  const files = [];
  /** @type {string | null} */
  let envFile = null;
  let dryRun = false;
  while (args.length && /** @type {string} */ (args[0]).startsWith('-')) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-f' || flag === '--file') files.push(val ?? args.shift() ?? '');
    else if (/^-f./.test(a)) files.push(a.slice(2));
    else if (flag === '--env-file') envFile = val ?? args.shift() ?? '';
    else if (['-p', '--project-name', '--project-directory', '--ansi', '--progress', '--profile', '--parallel'].includes(flag)) {
      if (val === undefined) args.shift();
    } else if (flag === '--dry-run') dryRun = true;
    else if (flag === '--compatibility' || flag === '--all-resources') continue;
    else if (flag === '-v' || flag === '--version') {
      o.out(`Docker Compose version v${COMPOSE_VERSION}\n`);
      return 0;
    } else o.fail(`unknown flag: ${a}`);
  }
  const sub = args.shift();
  if (sub === undefined) {
    o.out('\nUsage:  docker compose [OPTIONS] COMMAND\n\nDefine and run multi-container applications with Docker\n');
    return 0;
  }
  if (sub === 'version') {
    if (args.includes('--short')) o.out(`${COMPOSE_VERSION}\n`);
    else if (args.includes('json')) o.out(`{"version":"v${COMPOSE_VERSION}"}\n`);
    else o.out(`Docker Compose version v${COMPOSE_VERSION}\n`);
    return 0;
  }
  const known = ['pull', 'up', 'ps', 'exec', 'run', 'logs', 'config', 'stop', 'start', 'restart'];
  if (!known.includes(sub)) o.fail(`unknown docker command: "compose ${sub}"`);

  ctx.dryRun = dryRun;
  if (dryRun) o.progressPrefix = 'DRY-RUN MODE - ';
  const project = loadProject(state, files, envFile, o);
  switch (sub) {
    case 'pull':
      return composePull(state, project, args, o);
    case 'up':
      return composeUp(state, project, args, o);
    case 'ps':
      return composePs(state, args, o);
    case 'exec':
      return composeExec(state, args, o);
    case 'run':
      return composeRun(state, project, args, o);
    case 'logs':
      return composeLogs(state, args, o);
    case 'config':
      return composeConfig(state, project, args, o);
    case 'stop':
    case 'start':
    case 'restart':
      return composeLifecycle(state, sub, args, o);
  }
  return 1;
}

/**
 * Load the compose files and resolve the API image tag the way compose would:
 * shell environment first, then the project's `.env`.
 * @param {SimState} state @param {string[]} files @param {string | null} envFile @param {Out} o
 * @returns {Project}
 */
function loadProject(state, files, envFile, o) {
  if (!files.length) {
    const found = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'].find((f) => existsSync(join(cwd, f)));
    if (!found) o.fail('no configuration file provided: not found');
    files = [found];
  }
  let text = '';
  for (const f of files) {
    const abs = isAbsolute(f) ? f : join(cwd, f);
    if (!existsSync(abs)) o.fail(`open ${abs}: no such file or directory`);
    text += readFileSync(abs, 'utf8') + '\n';
  }
  const envPath = envFile ? (isAbsolute(envFile) ? envFile : join(cwd, envFile)) : join(cwd, '.env');
  if (envFile && !existsSync(envPath)) o.fail(`couldn't find env file: ${envPath}`);
  const dotenv = existsSync(envPath) ? parseDotenv(readFileSync(envPath, 'utf8')) : {};
  /** @type {Record<string, string>} */
  const vars = { ...dotenv };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) vars[k] = v;

  let tag = '';
  const templated = /ghcr\.io\/engramia\/engramia:\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/.exec(text);
  const pinned = /ghcr\.io\/engramia\/engramia:([A-Za-z0-9_][A-Za-z0-9_.-]*)/.exec(text);
  const varName = templated ? /** @type {string} */ (templated[1]) : pinned ? null : state.tagVariable;
  if (varName) {
    const op = templated?.[2];
    const def = templated?.[3] ?? '';
    const value = vars[varName];
    if (value === undefined) {
      if (op) tag = def;
      else o.err(`WARN[0000] The "${varName}" variable is not set. Defaulting to a blank string.\n`);
    } else {
      tag = op === ':-' && value === '' ? def : value;
    }
  } else if (pinned) {
    tag = /** @type {string} */ (pinned[1]);
  }
  const containerEnv = existsSync(join(cwd, '.env')) ? parseDotenv(readFileSync(join(cwd, '.env'), 'utf8')) : {};
  return { files, envFile, dryRun: false, text, vars, tag, apiRef: `${API_IMAGE_REPO}:${tag}`, containerEnv };
}

/** @param {SimState} state @param {string[]} names @param {Out} o */
function checkServices(state, names, o) {
  for (const n of names) if (!state.services[n]) o.fail(`no such service: ${n}`);
}

/** @param {SimState} state @param {string} svc @param {Project} project */
function serviceImage(state, svc, project) {
  return svc === API_SERVICE ? project.apiRef : (state.services[svc]?.image ?? '');
}

/** @param {SimState} state @param {string} tag */
function localApiImage(state, tag) {
  return state.images.find((i) => i.repository === API_IMAGE_REPO && i.tag === tag) ?? null;
}

/**
 * Pull the API image for the project's tag. Needs a login and a published tag. `failCode`: what a
 * failed pull exits with; `docker compose pull` (Compose 2.26, seen on the real-host tier) exits 18.
 * @param {SimState} state @param {Project} project @param {Out} o @param {boolean} quiet @param {number} [failCode]
 */
function pullApi(state, project, o, quiet, failCode = 1) {
  const tag = project.tag;
  if (!quiet) o.progress(`${API_SERVICE} Pulling `);
  if (!tag) {
    if (!quiet) o.progress(`${API_SERVICE} Error invalid reference format`);
    o.fail('Error response from daemon: invalid reference format');
  }
  if (!authorized(state)) {
    const msg = `Head "https://${state.registry.host}/v2/engramia/engramia/manifests/${tag}": unauthorized`;
    if (!quiet) o.progress(`${API_SERVICE} Error ${msg}`);
    o.fail(`Error response from daemon: ${msg}`, failCode);
  }
  const meta = state.registry.tags[tag];
  if (!meta) {
    const msg = `manifest for ${API_IMAGE_REPO}:${tag} not found: manifest unknown: manifest unknown`;
    if (!quiet) o.progress(`${API_SERVICE} Error ${msg}`);
    o.fail(`Error response from daemon: ${msg}`, failCode);
  }
  const existing = localApiImage(state, tag);
  if (existing && existing.digest === meta.digest) {
    if (!quiet) o.progress(`${API_SERVICE} Pulled `);
    return existing;
  }
  // A re-pushed tag leaves the old image behind untagged (dangling).
  if (existing) existing.tag = null;
  const img = {
    id: imageIdFor(meta.digest),
    repository: API_IMAGE_REPO,
    tag,
    digest: meta.digest,
    sizeBytes: meta.sizeBytes,
    createdAt: meta.buildTime,
  };
  state.images = state.images.filter((i) => i.id !== img.id);
  state.images.push(img);
  if (!quiet) {
    for (let i = 0; i < 3; i++) o.progress(`${sha256(`${meta.digest}:layer:${i}`).slice(0, 12)} Already exists `);
    for (let i = 3; i < 5; i++) o.progress(`${sha256(`${meta.digest}:layer:${i}`).slice(0, 12)} Pull complete `);
    o.progress(`${API_SERVICE} Pulled `);
  }
  return img;
}

/** @param {SimState} state @param {Project} project @param {string[]} args @param {Out} o */
function composePull(state, project, args, o) {
  let quiet = false;
  let ignoreFailures = false;
  /** @type {string[]} */
  const names = [];
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-q' || flag === '--quiet') quiet = true;
    else if (flag === '--ignore-pull-failures') ignoreFailures = true;
    else if (flag === '--include-deps' || flag === '--ignore-buildable') continue;
    else if (flag === '--policy') {
      if (val === undefined) args.shift();
    } else if (a.startsWith('-')) o.fail(`unknown flag: ${a}`);
    else names.push(a);
  }
  checkServices(state, names, o);
  const targets = names.length ? names : Object.keys(state.services);
  for (const svc of targets) {
    if (svc === API_SERVICE) {
      try {
        pullApi(state, project, o, quiet, COMPOSE_PULL_FAILED);
      } catch (e) {
        if (!(e instanceof Exit) || !ignoreFailures) throw e;
      }
    } else if (!quiet) {
      o.progress(`${svc} Pulling `);
      o.progress(`${svc} Pulled `);
    }
  }
  return 0;
}

/** Services in start order: dependencies first. @param {SimState} state @param {string[]} targets @param {boolean} withDeps */
function startOrder(state, targets, withDeps) {
  /** @type {string[]} */
  const order = [];
  /** @param {string} s */
  const visit = (s) => {
    if (order.includes(s)) return;
    if (withDeps) for (const d of state.services[s]?.dependsOn ?? []) visit(d);
    order.push(s);
  };
  targets.forEach(visit);
  return order;
}

/**
 * Start (or restart) a container; images marked crashOnStart exit right away.
 * @param {SimState} state @param {Container} c
 */
function bootContainer(state, c) {
  const now = new Date().toISOString();
  c.state = 'running';
  c.exitCode = 0;
  c.startedAt = now;
  c.finishedAt = null;
  if (c.service !== API_SERVICE) return;
  const tag = apiContainerTag(state) ?? '';
  const logs = (state.logs[API_SERVICE] ??= []);
  logs.push(...apiStartupLogs(tag, truthyMaintenance(c.env.ENGRAMIA_MAINTENANCE)));
  const crash = state.registry.tags[tag]?.crashOnStart;
  if (crash) {
    logs.splice(logs.length - 2, 2); // never got to "startup complete"
    logs.push(
      ...(crash.logs?.length
        ? crash.logs
        : ['Traceback (most recent call last):', '  File "/app/engramia/api/app.py", line 48, in <module>', "ModuleNotFoundError: No module named 'stripe'"]),
    );
    // Under the compose file's `restart: unless-stopped` the daemon keeps restarting it: a crash loop.
    c.state = crash.loop ? 'restarting' : 'exited';
    c.exitCode = crash.exitCode ?? 1;
    c.finishedAt = now;
    if (crash.loop) {
      c.restartCount = (c.restartCount ?? 0) + 1;
      // Caught in the second between two restarts: "running", and an exec dies with it.
      if (crash.runningWindow) Object.assign(c, { state: 'running', exitCode: 0, finishedAt: null });
    }
  }
  if (logs.length > 1000) logs.splice(0, logs.length - 1000);
}

/** @param {Record<string, string>} a @param {Record<string, string>} b */
function sameEnv(a, b) {
  const norm = (/** @type {Record<string, string>} */ e) => JSON.stringify(Object.entries(e).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return norm(a) === norm(b);
}

/** @param {SimState} state @param {Project} project @param {string[]} args @param {Out} o */
function composeUp(state, project, args, o) {
  let detach = false;
  let noDeps = false;
  let force = false;
  let noRecreate = false;
  let wait = false;
  let pull = 'missing';
  /** @type {string[]} */
  const names = [];
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-d' || flag === '--detach') detach = true;
    else if (flag === '--no-deps') noDeps = true;
    else if (flag === '--force-recreate') force = true;
    else if (flag === '--no-recreate') noRecreate = true;
    else if (flag === '--wait') {
      wait = true;
      detach = true;
    } else if (flag === '--pull') pull = val ?? args.shift() ?? 'missing';
    else if (['--wait-timeout', '-t', '--timeout', '--scale', '--exit-code-from'].includes(flag)) {
      if (val === undefined) args.shift();
    } else if (['--remove-orphans', '--no-build', '--build', '--quiet-pull', '--no-color', '-y', '--renew-anon-volumes', '-V', '--always-recreate-deps', '--no-start'].includes(flag)) continue;
    else if (a.startsWith('-')) o.fail(`unknown flag: ${a}`);
    else names.push(a);
  }
  if (!detach) {
    // Attached `up` streams logs until interrupted; the bot must never do that.
    o.fail('simulated docker: refusing `compose up` without -d (it would attach to the containers and never return)');
  }
  checkServices(state, names, o);
  const targets = names.length ? names : Object.keys(state.services);
  const order = startOrder(state, targets, !noDeps);

  // Images first, as compose resolves all images before touching containers.
  for (const svc of order) {
    if (svc !== API_SERVICE) continue;
    if (!project.tag) o.fail('Error response from daemon: invalid reference format');
    const local = localApiImage(state, project.tag);
    if (pull === 'always' || (!local && pull !== 'never')) pullApi(state, project, o, false);
    else if (!local) o.fail(`Error response from daemon: No such image: ${project.apiRef}`);
  }

  const now = new Date().toISOString();
  const started = new Set();
  for (const svc of order) {
    const def = state.services[svc];
    if (!def) continue;
    const image = serviceImage(state, svc, project);
    const imageId = svc === API_SERVICE ? (localApiImage(state, project.tag)?.id ?? '') : (state.containers[svc]?.imageId ?? imageIdFor(image));
    const env = def.envFile ? project.containerEnv : (state.containers[svc]?.env ?? {});
    let c = state.containers[svc];
    const deps = def.dependsOn.filter((d) => state.services[d]?.healthcheck);
    const waitDeps = () => {
      for (const d of deps) {
        o.progress(`Container ${d}  Waiting`);
        o.progress(`Container ${d}  Healthy`);
      }
    };
    if (!c) {
      state.seq += 1;
      c = {
        id: sha256(`container:${svc}:${state.seq}`),
        name: svc,
        service: svc,
        image,
        imageId,
        state: 'created',
        exitCode: 0,
        createdAt: now,
        startedAt: null,
        finishedAt: null,
        env: { ...env },
        health: def.healthcheck ? 'healthy' : '',
      };
      state.containers[svc] = c;
      o.progress(`Container ${svc}  Creating`);
      o.progress(`Container ${svc}  Created`);
      waitDeps();
      o.progress(`Container ${svc}  Starting`);
      bootContainer(state, c);
      o.progress(`Container ${svc}  Started`);
      started.add(svc);
      continue;
    }
    const differs = c.imageId !== imageId || c.image !== image || (def.envFile && !sameEnv(c.env, env));
    if ((differs && !noRecreate) || (force && targets.includes(svc))) {
      o.progress(`Container ${svc}  Recreate`);
      state.seq += 1;
      Object.assign(c, {
        id: sha256(`container:${svc}:${state.seq}`),
        image,
        imageId,
        createdAt: now,
        env: { ...env },
      });
      o.progress(`Container ${svc}  Recreated`);
      waitDeps();
      o.progress(`Container ${svc}  Starting`);
      bootContainer(state, c);
      o.progress(`Container ${svc}  Started`);
      started.add(svc);
    } else if (c.state === 'running') {
      o.progress(`Container ${svc}  Running`);
    } else {
      waitDeps();
      o.progress(`Container ${svc}  Starting`);
      bootContainer(state, c);
      o.progress(`Container ${svc}  Started`);
      started.add(svc);
    }
  }
  if (wait) {
    for (const svc of order) {
      const c = state.containers[svc];
      if (c && c.state !== 'running') {
        o.progress(`Container ${svc}  Error`);
        o.fail(`container ${svc} exited (${c.exitCode})`);
      }
      if (c) o.progress(`Container ${svc}  Healthy`);
    }
  }
  return 0;
}

/** @param {SimState} state @param {'stop' | 'start' | 'restart'} sub @param {string[]} args @param {Out} o */
function composeLifecycle(state, sub, args, o) {
  const names = [];
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-t' || flag === '--timeout') {
      if (val === undefined) args.shift();
    } else if (flag === '--no-deps') continue;
    else if (a.startsWith('-')) o.fail(`unknown flag: ${a}`);
    else names.push(a);
  }
  checkServices(state, names, o);
  const targets = names.length ? names : Object.keys(state.services);
  for (const svc of targets) {
    const c = state.containers[svc];
    if (!c) continue;
    if (sub === 'stop') {
      o.progress(`Container ${svc}  Stopping`);
      if (c.state === 'running' || c.state === 'restarting') Object.assign(c, { state: 'exited', exitCode: 0, finishedAt: new Date().toISOString() });
      o.progress(`Container ${svc}  Stopped`);
    } else if (sub === 'start') {
      if (c.state === 'running') continue;
      o.progress(`Container ${svc}  Starting`);
      bootContainer(state, c);
      o.progress(`Container ${svc}  Started`);
    } else {
      // restart keeps the container (and its env): .env edits need `up -d`, not this.
      o.progress(`Container ${svc}  Restarting`);
      bootContainer(state, c);
      o.progress(`Container ${svc}  Started`);
    }
  }
  return 0;
}

/** @param {SimState} state @param {Container} c */
function psRow(state, c) {
  const def = state.services[c.service];
  const now = Date.now();
  const running = c.state === 'running';
  const health = running ? c.health : '';
  let status = 'Created';
  if (running) status = `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.createdAt))}${health ? ` (${health})` : ''}`;
  else if (c.state === 'exited') status = `Exited (${c.exitCode}) ${humanDuration(now - Date.parse(c.finishedAt ?? c.createdAt))} ago`;
  else if (c.state === 'restarting') status = `Restarting (${c.exitCode}) ${humanDuration(now - Date.parse(c.finishedAt ?? c.createdAt))} ago`;
  const cmd = c.command ?? def?.command ?? '';
  const publishers =
    c.service === PROXY_SERVICE
      ? [80, 443].map((p) => ({ URL: '0.0.0.0', TargetPort: p, PublishedPort: p, Protocol: 'tcp' }))
      : [{ URL: '', TargetPort: c.service === DB_SERVICE ? 5432 : 8000, PublishedPort: 0, Protocol: 'tcp' }];
  return {
    Command: `"${cmd}"`,
    CreatedAt: goTime(c.createdAt),
    ExitCode: c.exitCode,
    Health: health,
    ID: c.id,
    Image: c.image,
    Labels: `com.docker.compose.config-hash=${sha256(JSON.stringify([c.image, c.env])).slice(0, 64)},com.docker.compose.container-number=1,com.docker.compose.oneoff=${c.oneOff ? 'True' : 'False'},com.docker.compose.project=engramia,com.docker.compose.service=${c.service},com.docker.compose.version=${COMPOSE_VERSION}`,
    LocalVolumes: c.service === DB_SERVICE || c.service === PROXY_SERVICE ? '1' : '0',
    Mounts: c.service === DB_SERVICE ? 'engramia_pgdata' : c.service === PROXY_SERVICE ? `${cwd}/Caddyfile,engramia_caddy_data` : '',
    Name: c.name,
    Names: c.name,
    Networks: 'engramia_default',
    Ports: running ? (def?.ports ?? '') : '',
    Project: 'engramia',
    Publishers: publishers,
    RunningFor: `${humanDuration(now - Date.parse(c.createdAt))} ago`,
    Service: c.service,
    Size: '0B',
    State: c.state,
    Status: status,
  };
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function composePs(state, args, o) {
  let all = false;
  let quiet = false;
  let servicesOnly = false;
  let noTrunc = false;
  /** @type {string | null} */
  let format = null;
  /** @type {string[]} */
  const statuses = [];
  /** @type {string[]} */
  const names = [];
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '-a' || flag === '--all') all = true;
    else if (flag === '-q' || flag === '--quiet') quiet = true;
    else if (flag === '--services') servicesOnly = true;
    else if (flag === '--no-trunc') noTrunc = true;
    else if (flag === '--orphans') continue;
    else if (flag === '--format') format = val ?? args.shift() ?? 'table';
    else if (flag === '--status') statuses.push(val ?? args.shift() ?? '');
    else if (flag === '--filter') {
      const f = val ?? args.shift() ?? '';
      if (f.startsWith('status=')) statuses.push(f.slice(7));
    } else if (a.startsWith('-')) o.fail(`unknown flag: ${a}`);
    else names.push(a);
  }
  checkServices(state, names, o);
  // Like compose v2: only running containers unless --all (or a --status filter).
  // One-off `run` containers left behind (no --rm) are listed too, like compose v2 does.
  let containers = [...Object.values(state.containers), ...(state.oneOffs ?? [])]
    .filter((c) => !names.length || names.includes(c.service))
    .filter((c) => (statuses.length ? statuses.includes(c.state) : all || c.state === 'running' || c.state === 'restarting'))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  if (servicesOnly) {
    o.out(containers.map((c) => c.service + '\n').join(''));
    return 0;
  }
  if (quiet) {
    o.out(containers.map((c) => c.id + '\n').join(''));
    return 0;
  }
  const rows = containers.map((c) => psRow(state, c));
  if (format === 'json') {
    o.out(rows.map((r) => JSON.stringify(r) + '\n').join(''));
    return 0;
  }
  if (format && format !== 'table') {
    o.out(rows.map((r) => renderTemplate(format ?? '', r) + '\n').join(''));
    return 0;
  }
  const trunc = (/** @type {string} */ s) => (noTrunc || s.length <= 22 ? s : `${s.slice(0, 20)}…"`);
  o.out(
    table([
      ['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'],
      ...rows.map((r) => [r.Name, r.Image, trunc(r.Command), r.Service, r.RunningFor, r.Status, r.Ports]),
    ]),
  );
  return 0;
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function composeLogs(state, args, o) {
  /** @type {number | null} */
  let tail = null;
  let follow = false;
  let prefix = true;
  let timestamps = false;
  /** @type {string[]} */
  const names = [];
  while (args.length) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (flag === '--tail' || flag === '-n') {
      const v = val ?? args.shift() ?? 'all';
      if (v === 'all') tail = null;
      else if (/^-?\d+$/.test(v)) tail = Number(v) < 0 ? null : Number(v);
      else o.fail(`invalid argument "${v}" for "-n, --tail" flag: strconv.Atoi: parsing "${v}": invalid syntax`);
    } else if (flag === '-f' || flag === '--follow') follow = true;
    else if (flag === '--no-log-prefix') prefix = false;
    else if (flag === '-t' || flag === '--timestamps') timestamps = true;
    else if (flag === '--no-color') continue;
    else if (['--since', '--until', '--index'].includes(flag)) {
      if (val === undefined) args.shift();
    } else if (a.startsWith('-')) o.fail(`unknown flag: ${a}`);
    else names.push(a);
  }
  checkServices(state, names, o);
  const targets = (names.length ? names : Object.keys(state.services)).filter((s) => state.containers[s]);
  // As Compose 2.26 prints it (real-host tier): the container's name without the project
  // (`engramia-api-1`), and ESC[2K (erase line) before every line, even with no TTY and no prefix.
  const names1 = Object.fromEntries(targets.map((s) => [s, `${s}-1`]));
  const width = Math.max(0, ...Object.values(names1).map((s) => s.length));
  for (const svc of targets) {
    let lines = state.logs[svc] ?? [];
    if (tail !== null) lines = tail === 0 ? [] : lines.slice(-tail);
    const c = state.containers[svc];
    const ts = (c?.startedAt ?? new Date().toISOString()).replace(/Z$/, '000000Z');
    for (const line of lines) {
      o.out(`\x1b[2K${prefix ? `${names1[svc].padEnd(width)}  | ` : ''}${timestamps ? `${ts} ` : ''}${line}\n`);
    }
  }
  if (follow) o.hangAfter = true;
  return 0;
}

/** @param {SimState} state @param {Project} project @param {string[]} args @param {Out} o */
function composeConfig(state, project, args, o) {
  if (args.includes('--services')) {
    o.out(Object.keys(state.services).map((s) => s + '\n').join(''));
    return 0;
  }
  if (args.includes('--images')) {
    o.out(Object.keys(state.services).map((s) => serviceImage(state, s, project) + '\n').join(''));
    return 0;
  }
  if (args.includes('-q') || args.includes('--quiet')) return 0;
  const text = project.text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (_, name, op, def) => {
    const v = project.vars[name];
    if (v === undefined || (op === ':-' && v === '')) return op ? def : '';
    return v;
  });
  o.out(text);
  return 0;
}

// ---------------------------------------------------------------------------
// docker compose exec and the programs inside the containers
// ---------------------------------------------------------------------------

/** @param {SimState} state @param {string[]} args @param {Out} o */
function composeExec(state, args, o) {
  let tty = true;
  while (args.length && /** @type {string} */ (args[0]).startsWith('-')) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (a === '--') break;
    if (flag === '-T' || flag === '--no-TTY' || flag === '--no-tty') tty = false;
    else if (flag === '-d' || flag === '--detach' || flag === '--privileged') continue;
    else if (flag === '-i' || flag === '--interactive') continue;
    else if (['-e', '--env', '-u', '--user', '-w', '--workdir', '--index'].includes(flag)) {
      if (val === undefined) args.shift();
    } else if (/^-[TdiT]+$/.test(a)) {
      if (a.includes('T')) tty = false;
    } else o.fail(`unknown flag: ${a}`);
  }
  const svc = args.shift();
  if (!svc || !args.length) o.fail('"docker compose exec" requires at least 2 arguments.\nSee \'docker compose exec --help\'.');
  checkServices(state, [svc], o);
  const target = state.containers[svc];
  // The daemon counts a restarting container as running, so compose finds it and the daemon refuses the exec.
  if (target?.state === 'restarting') o.fail(`Error response from daemon: Container ${target.id} is restarting, wait until the container is running`);
  if (!isRunning(state, svc)) o.fail(`service "${svc}" is not running`);
  if (target && inRunningWindow(state, target)) {
    // Real Docker: the exec starts, the container dies a moment later and takes it along (SIGKILL,
    // exit 137), with at most the first lines printed and nothing done; the daemon restarts it.
    if (args.includes('alembic')) alembicInfo(o, 'Context impl PostgresqlImpl.');
    Object.assign(target, { state: 'restarting', exitCode: 3, finishedAt: new Date().toISOString(), restartCount: (target.restartCount ?? 0) + 1 });
    throw new Exit(137);
  }
  if (tty) {
    // Over SSH without a pty there is no terminal to attach; with one, output is
    // mangled the way a TTY mangles it (CRLF, merged streams).
    if (!isatty(0)) o.fail('the input device is not a TTY');
    o.tty = true;
  }
  return runInContainer(state, svc, args, o, serviceBox(state, svc));
}

/** A crash-looping API container caught "running" between two restarts. @param {SimState} state @param {Container} c */
function inRunningWindow(state, c) {
  return c.service === API_SERVICE && c.state === 'running' && Boolean(state.registry.tags[apiContainerTag(state) ?? '']?.crashOnStart?.runningWindow);
}

/**
 * What a program inside a container sees: its env, hostname and (for the API) the
 * image tag whose migration scripts it ships.
 * @typedef {{ env: Record<string, string>, hostname: string, tag: string | null, oneOff: boolean }} Box
 */

/** The service's own (running) container. @param {SimState} state @param {string} svc @returns {Box} */
function serviceBox(state, svc) {
  const c = /** @type {Container} */ (state.containers[svc]);
  return { env: c.env, hostname: c.id.slice(0, 12), tag: svc === API_SERVICE ? apiContainerTag(state) : null, oneOff: false };
}

/**
 * `docker compose run`: a throwaway container of the service's image (resolved from
 * the compose file like `up` does, pulled first if missing) running one command. It
 * never touches the service's running container; without `--rm` the stopped one-off
 * container stays behind (in `state.oneOffs`, listed by `ps -a`, pinning its image).
 * @param {SimState} state @param {Project} project @param {string[]} args @param {Out} o
 */
function composeRun(state, project, args, o) {
  let tty = true;
  let rm = false;
  let noDeps = false;
  let detach = false;
  let quietPull = false;
  let pull = 'missing';
  /** @type {string | null} */
  let name = null;
  /** @type {Record<string, string>} */
  const extraEnv = {};
  while (args.length && /** @type {string} */ (args[0]).startsWith('-')) {
    const a = /** @type {string} */ (args.shift());
    const [flag, val] = splitEq(a);
    if (a === '--') break;
    if (flag === '-T' || flag === '--no-TTY' || flag === '--no-tty') tty = false;
    else if (flag === '--rm') rm = true;
    else if (flag === '--no-deps') noDeps = true;
    else if (flag === '-d' || flag === '--detach') detach = true;
    else if (flag === '--quiet-pull') quietPull = true;
    else if (flag === '--pull') pull = val ?? args.shift() ?? 'missing';
    else if (flag === '--name') name = val ?? args.shift() ?? '';
    else if (flag === '-e' || flag === '--env') {
      const kv = val ?? args.shift() ?? '';
      const i = kv.indexOf('=');
      if (i === -1) {
        const v = process.env[kv];
        if (v !== undefined) extraEnv[kv] = v;
      } else extraEnv[kv.slice(0, i)] = kv.slice(i + 1);
    } else if (['-i', '--interactive', '--service-ports', '--use-aliases', '--remove-orphans', '--build', '--no-build', '-P', '--privileged'].includes(flag)) continue;
    else if (['--entrypoint', '-u', '--user', '-w', '--workdir', '-v', '--volume', '-p', '--publish', '-l', '--label', '--cap-add', '--cap-drop', '--env-from-file'].includes(flag)) {
      if (val === undefined) args.shift();
    } else if (/^-[TdiP]+$/.test(a)) {
      if (a.includes('T')) tty = false;
      if (a.includes('d')) detach = true;
    } else o.fail(`unknown flag: ${a}`);
  }
  const svc = args.shift();
  if (!svc) o.fail('"docker compose run" requires at least 1 argument.\nSee \'docker compose run --help\'.');
  checkServices(state, [svc], o);
  const def = /** @type {ServiceDef} */ (state.services[svc]);
  if (!args.length) {
    // The image's default command is the long-running server itself.
    o.fail(`simulated docker: refusing \`compose run ${svc}\` without a command (it would run "${def.command}" in the foreground and never return)`);
  }
  const cmd = args;
  if (tty && !detach) {
    if (!isatty(0)) o.fail('the input device is not a TTY');
    o.tty = true;
  }

  // Image first (pulled like `up` does when missing), then dependencies, then the container.
  const image = serviceImage(state, svc, project);
  /** @type {string} */
  let imageId;
  if (svc === API_SERVICE) {
    if (!project.tag) o.fail('Error response from daemon: invalid reference format');
    const local = localApiImage(state, project.tag);
    if (pull === 'always' || (!local && pull !== 'never')) imageId = pullApi(state, project, o, quietPull).id;
    else if (!local) o.fail(`Error response from daemon: No such image: ${project.apiRef}`);
    else imageId = local.id;
  } else {
    imageId = state.containers[svc]?.imageId ?? imageIdFor(image);
  }
  if (!noDeps && def.dependsOn.length) composeUp(state, project, ['-d', ...def.dependsOn], o);

  state.seq += 1;
  const id = sha256(`container:${svc}:run:${state.seq}`);
  const cname = name || `${state.project}-${svc}-run-${id.slice(0, 12)}`;
  const now = new Date().toISOString();
  const baseEnv = def.envFile ? project.containerEnv : (state.containers[svc]?.env ?? {});
  const env = { ...baseEnv, ...extraEnv };
  /** @type {Box} */
  const box = { env, hostname: id.slice(0, 12), tag: svc === API_SERVICE ? project.tag : null, oneOff: true };

  // The program's output: to the caller, or (detached) to the container's log only.
  const inner = detach ? new Out() : o;
  if (tty) inner.tty = true;
  let code;
  try {
    code = runInContainer(state, svc, cmd, inner, box);
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
    code = e.code;
  }
  if (!rm) {
    /** @type {Container} */
    const c = {
      id,
      name: cname,
      service: svc,
      image,
      imageId,
      state: 'exited',
      exitCode: code,
      createdAt: now,
      startedAt: now,
      finishedAt: new Date().toISOString(),
      env,
      health: '',
      oneOff: true,
      command: cmd.join(' '),
    };
    (state.oneOffs ??= []).push(c);
  }
  if (detach) {
    o.out(`${cname}\n`);
    return 0;
  }
  return code;
}

/** Split a shell command line into words (quotes only; no operators). @param {string} s */
function shellWords(s) {
  /** @type {string[]} */
  const words = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const ch = /** @type {string} */ (s[i]);
    if (ch === "'") {
      const end = s.indexOf("'", i + 1);
      cur += s.slice(i + 1, end === -1 ? s.length : end);
      i = end === -1 ? s.length : end;
      has = true;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length) j++;
        cur += s[j];
      }
      i = j;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) words.push(cur);
  return words;
}

/** @param {SimState} state @param {string} svc @param {string[]} cmd @param {Out} o @param {Box} box @returns {number} */
function runInContainer(state, svc, cmd, o, box) {
  const [prog, ...rest] = cmd;
  const name = (prog ?? '').replace(/^.*\//, '');
  if ((name === 'sh' || name === 'bash') && rest[0] === '-c') {
    const line = rest[1] ?? '';
    if (/[|;&<>`$]/.test(line)) o.fail(`simulated container shell: only one simple command is supported: ${line}`, 2);
    const words = shellWords(line);
    if (!words.length) return 0;
    return runInContainer(state, svc, words, o, box);
  }
  if (name === 'env' && !rest.length) {
    o.out(Object.entries({ PATH: '/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: box.hostname, ...box.env }).map(([k, v]) => `${k}=${v}\n`).join(''));
    return 0;
  }
  if (name === 'printenv') {
    if (!rest.length) return runInContainer(state, svc, ['env'], o, box);
    const v = box.env[rest[0] ?? ''];
    if (v === undefined) return 1;
    o.out(v + '\n');
    return 0;
  }
  if (name === 'echo') {
    o.out(rest.join(' ') + '\n');
    return 0;
  }
  if (name === 'true') return 0;
  if (svc === API_SERVICE && name === 'alembic') return alembic(state, rest, o, box.tag);
  if (svc === DB_SERVICE && box.oneOff && ['pg_dump', 'psql', 'pg_isready'].includes(name)) {
    // A one-off postgres container has no server of its own; the socket is empty.
    if (name === 'pg_isready') {
      o.out('/var/run/postgresql:5432 - no response\n');
      return 2;
    }
    o.err(`${name}: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n`);
    return name === 'psql' ? 2 : 1;
  }
  if (svc === DB_SERVICE && name === 'pg_dump') return pgDump(state, rest, o);
  if (svc === DB_SERVICE && name === 'psql') return psql(state, rest, o);
  if (svc === DB_SERVICE && name === 'pg_isready') {
    o.out('/var/run/postgresql:5432 - accepting connections\n');
    return 0;
  }
  if (svc === PROXY_SERVICE && name === 'caddy' && rest[0] === 'version') {
    o.out('v2.8.4 h1:q3pe0wpBj1OcHFZ3n/1nl4V4bxBrYoSoab7rL9BMYNk=\n');
    return 0;
  }
  if (box.oneOff) {
    // The container never starts: compose reports the daemon's error.
    o.fail(`Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "${prog}": executable file not found in $PATH: unknown`);
  }
  o.fail(`OCI runtime exec failed: exec failed: unable to start container process: exec: "${prog}": executable file not found in $PATH: unknown`, 126);
}

// --- alembic ----------------------------------------------------------------

/** @param {Out} o @param {string} msg */
function alembicInfo(o, msg) {
  o.err(`INFO  [alembic.runtime.migration] ${msg}\n`);
}

/** alembic's util.err(): log, print FAILED on stdout, sys.exit(-1). @param {Out} o @param {string} msg @returns {never} */
function alembicFail(o, msg) {
  o.err(`ERROR [alembic.util.messaging] ${msg}\n`);
  o.out(`FAILED: ${msg}\n`);
  throw new Exit(255);
}

/** @param {Out} o @param {string} exc */
function pythonTraceback(o, exc) {
  o.err(
    'Traceback (most recent call last):\n' +
      '  File "/usr/local/bin/alembic", line 8, in <module>\n' +
      '    sys.exit(main())\n' +
      '             ^^^^^^\n' +
      '  File "/usr/local/lib/python3.12/site-packages/alembic/config.py", line 641, in main\n' +
      '    CommandLine(prog=prog).main(argv=argv)\n' +
      '  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/default.py", line 941, in do_execute\n' +
      '    cursor.execute(statement, parameters)\n' +
      `${exc}\n`,
  );
}

/** @param {import('./host.mjs').Migration} m */
function migrationPath(m) {
  return `/app/engramia/db/migrations/versions/${m.revision}_${m.description.replace(/\W+/g, '_')}.py`;
}

/**
 * alembic inside an API container whose image is `tag` (its scripts: the chain up to that image's head).
 * @param {SimState} state @param {string[]} args @param {Out} o @param {string | null} tag @returns {number}
 */
function alembic(state, args, o, tag) {
  const a = [...args];
  while (a.length && /** @type {string} */ (a[0]).startsWith('-')) {
    const f = /** @type {string} */ (a.shift());
    if (['-c', '--config', '-n', '--name', '-x'].includes(f)) a.shift();
  }
  const sub = a.shift();
  const usage = 'usage: alembic [-h] [--version] [-c CONFIG] [-n NAME] [-x X] [--raiseerr] [-q]\n               {branches,check,current,downgrade,edit,ensure_version,heads,history,init,list_templates,merge,revision,show,stamp,upgrade} ...\n';
  if (!sub) {
    o.err(usage + 'alembic: error: too few arguments\n');
    return 2;
  }
  const verbose = a.includes('-v') || a.includes('--verbose');
  const positional = a.filter((x) => !x.startsWith('-') || /^-\d+$/.test(x));
  const chain = imageMigrations(state, tag);
  const headIdx = chain.length - 1;
  const head = chain[headIdx]?.revision ?? null;
  const idxOf = (/** @type {string | null} */ rev) => (rev === null ? -1 : chain.findIndex((m) => m.revision === rev));

  /** @param {import('./host.mjs').Migration} m @param {boolean} long */
  const entry = (m, long) => {
    const isHead = m.revision === head;
    if (!long) return `${m.down ?? '<base>'} -> ${m.revision}${isHead ? ' (head)' : ''}, ${m.description}\n`;
    const doc = [m.description, '', `Revision ID: ${m.revision}`, `Revises: ${m.down ?? ''}`, `Create Date: ${m.createDate}`, ''];
    return `Rev: ${m.revision}${isHead ? ' (head)' : ''}\nParent: ${m.down ?? '<base>'}\nPath: ${migrationPath(m)}\n\n${doc.map((l) => `    ${l}`).join('\n')}\n\n`;
  };

  if (sub === 'history') {
    o.out([...chain].reverse().map((m) => entry(m, verbose)).join(''));
    return 0;
  }
  if (sub === 'heads') {
    // No database needed: the heads of the scripts shipped in the image.
    const m = chain[headIdx];
    o.out(m ? (verbose ? entry(m, true) : `${m.revision} (head)\n`) : '');
    return 0;
  }
  if (sub === 'show') {
    const want = positional[0] === 'head' ? head : positional[0];
    const m = chain.find((x) => x.revision === want);
    if (!m) alembicFail(o, `Can't locate revision identified by '${positional[0] ?? ''}'`);
    o.out(entry(m, true));
    return 0;
  }
  if (!['current', 'upgrade', 'downgrade', 'stamp'].includes(sub)) {
    o.err(usage + `alembic: error: argument {branches,check,current,downgrade,edit,ensure_version,heads,history,init,list_templates,merge,revision,show,stamp,upgrade}: invalid choice: '${sub}'\n`);
    return 2;
  }
  if (!isRunning(state, DB_SERVICE)) {
    pythonTraceback(
      o,
      'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not translate host name "pgvector" to address: Name or service not known\n\n(Background on this error at: https://sqlalche.me/e/20/e3q8)',
    );
    return 1;
  }
  alembicInfo(o, 'Context impl PostgresqlImpl.');
  alembicInfo(o, 'Will assume transactional DDL.');
  const cur = state.db.revision;
  const curIdx = idxOf(cur);
  // An image older than the database does not have the newer scripts: alembic cannot even say where it is.
  if (cur !== null && curIdx === -1) alembicFail(o, `Can't locate revision identified by '${cur}'`);

  if (sub === 'current') {
    if (cur !== null) o.out(`${cur}${cur === head ? ' (head)' : ''}\n`);
    return 0;
  }
  const target = positional[0];
  if (!target) {
    o.err(usage + `alembic: error: the following arguments are required: revision\n`);
    return 2;
  }
  if (sub === 'stamp') {
    const t = target === 'head' || target === 'heads' ? headIdx : target === 'base' ? -1 : idxOf(target);
    if (t === -1 && target !== 'base') alembicFail(o, `Can't locate revision identified by '${target}'`);
    state.db.revision = t === -1 ? null : (chain[t]?.revision ?? null);
    return 0;
  }
  if (sub === 'upgrade') {
    let t;
    if (target === 'head' || target === 'heads') t = headIdx;
    else if (/^\+\d+$/.test(target)) {
      const n = Number(target.slice(1));
      t = curIdx + n;
      if (t > headIdx) alembicFail(o, `Relative revision ${target} didn't produce ${n} migrations`);
    } else {
      t = idxOf(target);
      if (t === -1) alembicFail(o, `Can't locate revision identified by '${target}'`);
      if (t < curIdx) alembicFail(o, `Destination ${target} is not a valid upgrade target from current head(s)`);
    }
    for (let i = curIdx + 1; i <= t; i++) {
      const m = /** @type {import('./host.mjs').Migration} */ (chain[i]);
      alembicInfo(o, `Running upgrade ${m.down ?? ''} -> ${m.revision}, ${m.description}`);
      if (state.db.failUpgradeTo === m.revision) {
        // Postgres has transactional DDL and alembic runs the whole upgrade in one transaction: nothing sticks.
        pythonTraceback(
          o,
          `sqlalchemy.exc.ProgrammingError: (psycopg2.errors.DuplicateTable) relation "${m.description.replace(/\W+/g, '_')}" already exists\n\n(Background on this error at: https://sqlalche.me/e/20/f405)`,
        );
        return 1;
      }
    }
    state.db.revision = t === -1 ? cur : (chain[t]?.revision ?? null);
    return 0;
  }
  // downgrade
  let t;
  if (target === 'base') t = -1;
  else if (/^-\d+$/.test(target)) {
    const n = Number(target.slice(1));
    t = curIdx - n;
    if (t < -1) alembicFail(o, `Relative revision ${target} didn't produce ${n} migrations`);
  } else {
    t = idxOf(target === 'head' ? head : target);
    if (t === -1) alembicFail(o, `Can't locate revision identified by '${target}'`);
    if (t > curIdx) alembicFail(o, `Destination ${target} is not a valid downgrade target from current head(s)`);
  }
  for (let i = curIdx; i > t; i--) {
    const m = /** @type {import('./host.mjs').Migration} */ (chain[i]);
    alembicInfo(o, `Running downgrade ${m.revision} -> ${m.down ?? ''}, ${m.description}`);
    if (state.db.failDowngradeFrom === m.revision) {
      pythonTraceback(
        o,
        `sqlalchemy.exc.ProgrammingError: (psycopg2.errors.DependentObjectsStillExist) cannot drop table ${m.description.replace(/\W+/g, '_')} because other objects depend on it\n\n(Background on this error at: https://sqlalche.me/e/20/f405)`,
      );
      return 1;
    }
  }
  state.db.revision = t === -1 ? null : (chain[t]?.revision ?? null);
  return 0;
}

// --- postgres tools ------------------------------------------------------------

/**
 * Parse libpq-style options; returns user/db and the remaining words.
 * @param {string[]} args @param {Record<string, string>} valued short/long options with values → key
 */
function pgArgs(args, valued) {
  /** @type {Record<string, string>} */
  const opts = {};
  /** @type {Set<string>} */
  const flags = new Set();
  /** @type {string[]} */
  const positional = [];
  for (let i = 0; i < args.length; i++) {
    const a = /** @type {string} */ (args[i]);
    const [flag, val] = splitEq(a);
    const key = valued[flag];
    if (key) {
      opts[key] = val ?? args[++i] ?? '';
    } else if (/^-[A-Za-z]./.test(a) && valued[a.slice(0, 2)]) {
      opts[/** @type {string} */ (valued[a.slice(0, 2)])] = a.slice(2);
    } else if (a.startsWith('-')) {
      flags.add(flag);
    } else positional.push(a);
  }
  return { opts, flags, positional };
}

/** @param {Out} o @param {string} tool @param {string} user @param {string} db */
function pgConnect(o, tool, user, db) {
  const sock = 'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed';
  if (user !== 'engramia') o.fail(`${tool}: error: ${sock}: FATAL:  role "${user}" does not exist`);
  if (db !== 'engramia') o.fail(`${tool}: error: ${sock}: FATAL:  database "${db}" does not exist`);
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function pgDump(state, args, o) {
  const { opts, positional } = pgArgs(args, {
    '-U': 'user', '--username': 'user', '-d': 'db', '--dbname': 'db', '-F': 'format', '--format': 'format',
    '-h': 'host', '--host': 'host', '-p': 'port', '--port': 'port', '-Z': 'compress', '--compress': 'compress',
    '-f': 'file', '--file': 'file', '-n': 'schema', '-t': 'table',
  });
  const user = opts.user ?? 'root'; // docker exec runs as root inside the postgres image
  pgConnect(o, 'pg_dump', user, opts.db ?? positional[0] ?? user);
  const fmt = (opts.format ?? 'p').toLowerCase();
  const bytes = fmt === 'c' || fmt === 'custom' ? pgDumpBytes(state) : Buffer.from(plainDump(state));
  // -f writes inside the container, where nobody will ever find it.
  if (!opts.file) o.out(bytes);
  return 0;
}

/** @param {SimState} state */
function plainDump(state) {
  return `--
-- PostgreSQL database dump
--

-- Dumped from database version 16.4 (Debian 16.4-1.pgdg120+2)
-- Dumped by pg_dump version 16.4 (Debian 16.4-1.pgdg120+2)

SET statement_timeout = 0;
SET client_encoding = 'UTF8';

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);

COPY public.alembic_version (version_num) FROM stdin;
${state.db.revision ?? ''}
\\.

-- memory_patterns: ${state.db.patternCount} rows

--
-- PostgreSQL database dump complete
--

`;
}

/** @param {SimState} state @param {string[]} args @param {Out} o */
function psql(state, args, o) {
  const { opts, flags, positional } = pgArgs(args, {
    '-U': 'user', '--username': 'user', '-d': 'db', '--dbname': 'db', '-c': 'command', '--command': 'command',
    '-h': 'host', '--host': 'host', '-p': 'port', '--port': 'port', '-v': 'var', '--set': 'var', '-f': 'file',
  });
  const user = opts.user ?? 'root';
  pgConnect(o, 'psql', user, opts.db ?? positional[0] ?? user);
  const sql = opts.command;
  if (sql === undefined) o.fail('simulated psql: only -c "SQL" is supported (no interactive session)', 2);
  const tuplesOnly = flags.has('-t') || flags.has('--tuples-only') || flags.has('-tA') || flags.has('-At');
  const unaligned = flags.has('-A') || flags.has('--no-align') || flags.has('-tA') || flags.has('-At');
  /** @type {[string, string[]] | null} */
  let result = null;
  if (/^\s*select\s+version\s*\(\s*\)\s*;?\s*$/i.test(sql)) {
    result = ['version', ['PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit']];
  } else if (/alembic_version/i.test(sql)) {
    result = ['version_num', state.db.revision ? [state.db.revision] : []];
  } else if (/^\s*select\s+pg_database_size\s*\(\s*current_database\s*\(\s*\)\s*\)\s*;?\s*$/i.test(sql)) {
    result = ['pg_database_size', [String(state.db.sizeBytes ?? DEFAULT_DB_SIZE_BYTES)]];
  } else if (/^\s*select\s+1\s*;?\s*$/i.test(sql)) {
    result = ['?column?', ['1']];
  }
  if (!result) o.fail(`ERROR:  simulated psql cannot run this query: ${sql}`, 1);
  const [header, rows] = result;
  if (unaligned) {
    o.out((tuplesOnly ? '' : `${header}\n`) + rows.map((r) => r + '\n').join('') + (tuplesOnly ? '' : `(${rows.length} row${rows.length === 1 ? '' : 's'})\n`));
    return 0;
  }
  if (tuplesOnly) {
    o.out(rows.map((r) => ` ${r}\n`).join('') + '\n');
    return 0;
  }
  const width = Math.max(header.length, ...rows.map((r) => r.length));
  const left = Math.floor((width - header.length) / 2);
  const head = ' '.repeat(left) + header + ' '.repeat(width - header.length - left);
  o.out(` ${head} \n${'-'.repeat(width + 2)}\n${rows.map((r) => ` ${r}\n`).join('')}(${rows.length} row${rows.length === 1 ? '' : 's'})\n\n`);
  return 0;
}
