// Simulated Engramia host: the state behind the fake `docker` CLI (docker.mjs) and
// the fake Engramia API (api.mjs). Everything lives in files under the deploy dir so
// that separate processes (docker invoked over SSH, the API server in the test
// process, the test itself) all see one truth.
//
// Only node: builtins here: the docker shim imports this module on every call and
// must start fast.

import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the directory holding the `docker` shim; put it first on PATH. */
export const SIM_BIN_DIR = join(dirname(fileURLToPath(import.meta.url)), 'bin');
/** Absolute path of the `docker` shim itself. */
export const DOCKER_SHIM = join(SIM_BIN_DIR, 'docker');

export const API_IMAGE_REPO = 'ghcr.io/engramia/engramia';
export const API_SERVICE = 'engramia-api';
export const DB_SERVICE = 'pgvector';
export const PROXY_SERVICE = 'caddy';
export const COMPOSE_FILE = 'docker-compose.prod.yml';

const DAY_MS = 24 * 3600 * 1000;
export const DEFAULT_DB_SIZE_BYTES = 9_187_331;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/**
 * @typedef {'ok' | 'error' | 'not_configured'} CheckStatus
 * @typedef {{ status: CheckStatus, latency_ms: number | null, error: string | null }} DeepCheck
 * @typedef {{ revision: string, down: string | null, description: string, createDate: string }} Migration
 * @typedef {{
 *   head: string, digest: string, gitCommit: string, buildTime: string, sizeBytes: number,
 *   crashOnStart?: { exitCode: number, logs: string[], loop?: boolean, runningWindow?: boolean } | null,
 * }} RemoteTag
 * @typedef {{
 *   id: string, repository: string | null, tag: string | null, digest: string | null,
 *   sizeBytes: number, createdAt: string,
 * }} LocalImage
 * @typedef {{
 *   image: string | null, command: string, ports: string, healthcheck: boolean,
 *   dependsOn: string[], envFile: boolean,
 * }} ServiceDef
 * @typedef {{
 *   id: string, name: string, service: string, image: string, imageId: string,
 *   state: 'running' | 'exited' | 'created' | 'restarting', exitCode: number,
 *   createdAt: string, startedAt: string | null, finishedAt: string | null,
 *   env: Record<string, string>, health: '' | 'healthy' | 'unhealthy' | 'starting',
 *   oneOff?: boolean, command?: string, restartCount?: number,
 * }} Container
 * @typedef {{
 *   match: string | string[], exitCode?: number, stdout?: string, stderr?: string,
 *   delayMs?: number, hang?: boolean, hangAfter?: boolean, times?: number,
 *   inContainerMs?: number,
 * }} Fault
 * @typedef {{
 *   down: boolean, hang: boolean, delayMs: number, rateLimitPerMinute: number | null,
 *   startupMs?: number,
 * }} ApiSettings
 * @typedef {{
 *   schema: 1,
 *   project: string,
 *   tagVariable: string,
 *   composeFile: string,
 *   apiImage: string,
 *   seq: number,
 *   registry: {
 *     host: string, username: string | null, token: string,
 *     tags: Record<string, RemoteTag>,
 *   },
 *   images: LocalImage[],
 *   composePlugin?: 'system' | 'user',
 *   services: Record<string, ServiceDef>,
 *   containers: Record<string, Container>,
 *   oneOffs?: Container[],
 *   db: {
 *     revision: string | null, patternCount: number,
 *     failUpgradeTo: string | null, failDowngradeFrom: string | null,
 *     sizeBytes?: number,
 *   },
 *   migrations: Migration[],
 *   checks: Record<string, Partial<DeepCheck> & Record<string, unknown>>,
 *   api: ApiSettings,
 *   logs: Record<string, string[]>,
 *   faults: Fault[],
 *   containerProcs?: Array<{ pid: number, container: string, cmd: string }>,
 * }} SimState
 * @typedef {{
 *   ts: string, pid: number, argv: string[], cwd: string,
 *   env: Record<string, string | null>,
 *   stdin: null | { bytes: number, sha256: string, trimmedSha256: string },
 *   exitCode: number | null, durationMs: number,
 *   phase: 'start' | 'end' | 'executed',
 *   fault?: string | string[],
 * }} CommandRecord
 * @typedef {{
 *   tagVariable?: string, runningTag?: string, apiKey?: string, registryToken?: string,
 *   remoteTags?: Record<string, string | Partial<RemoteTag>>, dbRevision?: string | null,
 *   patternCount?: number, pinnedTagInEnv?: boolean, composePlugin?: 'system' | 'user',
 * }} CreateHostOptions
 */

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Block the thread (no busy loop): docker.mjs is synchronous by design. @param {number} ms */
export function sleepSync(ms) {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

/** @param {string | Buffer} s */
export function sha256(s) {
  return createHash('sha256').update(s).digest('hex');
}

/** @template T @param {T} v @returns {T} */
function clone(v) {
  return JSON.parse(JSON.stringify(v));
}

/** @param {string} deployPath */
export function simPaths(deployPath) {
  const sim = join(deployPath, '.sim');
  return {
    sim,
    state: join(sim, 'state.json'),
    commands: join(sim, 'commands.jsonl'),
    lock: join(sim, 'lock'),
    env: join(deployPath, '.env'),
    compose: join(deployPath, COMPOSE_FILE),
  };
}

// ---------------------------------------------------------------------------
// Migration chain and image metadata (deterministic)
// ---------------------------------------------------------------------------

// Descriptions follow Engramia's real migration files; 007 never existed upstream,
// so 008 revises 006 — the bot must not assume consecutive numbers.
const MIGRATION_DESCRIPTIONS = /** @type {const} */ ([
  ['001', 'initial schema'],
  ['002', 'rename brain to memory'],
  ['003', 'scope rbac'],
  ['004', 'jobs'],
  ['005', 'telemetry'],
  ['006', 'data governance'],
  ['008', 'billing'],
  ['009', 'scope key uniqueness'],
  ['010', 'dsr requests'],
  ['011', 'billing webhook idempotency'],
  ['012', 'billing dunning'],
  ['013', 'cloud users'],
  ['014', 'jobs max execution seconds'],
  ['015', 'revoked jtis'],
  ['016', 'email verification'],
  ['017', 'api keys expires at timestamptz'],
  ['018', 'audit log drop key fk'],
  ['019', 'memory data scope pk'],
  ['020', 'billing cancel at period end'],
  ['021', 'account deletion'],
  ['022', 'audit log project id nullable'],
  ['023', 'tenant credentials'],
  ['024', 'byok tier rename'],
  ['025', 'credentials failover chain'],
  ['026', 'role cost ceiling'],
  ['027', 'backup download log'],
  ['028', 'credential backend'],
  ['029', 'waitlist and force password change'],
  ['030', 'waitlist active unique index'],
  ['031', 'audit log actor user id'],
  ['032', 'admin auth'],
]);

/** @returns {Migration[]} */
export function defaultMigrations() {
  const start = Date.UTC(2025, 0, 6, 9, 0, 0);
  /** @type {string | null} */
  let down = null;
  return MIGRATION_DESCRIPTIONS.map(([revision, description], i) => {
    // Spread create dates over ~16 months with a deterministic time of day.
    const t = start + i * 16 * DAY_MS + (i * 7919 % 36000) * 1000;
    const m = { revision, down, description, createDate: isoToAlembicDate(new Date(t).toISOString()) };
    down = revision;
    return m;
  });
}

/** @param {string} iso */
function isoToAlembicDate(iso) {
  // alembic writes `datetime.now()` → "2025-01-06 09:00:00.123456"
  return iso.replace('T', ' ').replace('Z', '').replace(/\.(\d{3})$/, '.$1000');
}

/** @param {string} tag @param {string} head @param {number} index */
function makeRemoteTag(tag, head, index) {
  const build = new Date(Date.UTC(2026, 3, 1) + index * 14 * DAY_MS + 3600_000 * 11);
  return {
    head,
    digest: `sha256:${sha256(`ghcr.io/engramia/engramia:${tag}#1`)}`,
    gitCommit: createHash('sha1').update(`engramia@${tag}`).digest('hex'),
    buildTime: build.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    sizeBytes: 398_000_000 + index * 7_345_123,
    crashOnStart: null,
  };
}

/** @param {string} digest */
export function imageIdFor(digest) {
  return `sha256:${sha256(`config:${digest}`)}`;
}

// ---------------------------------------------------------------------------
// Locking and state IO
// ---------------------------------------------------------------------------

const LOCK_STALE_MS = 5000;
const LOCK_GIVE_UP_MS = 30_000;

/**
 * Run fn while holding `.sim/lock` (a directory: mkdir is atomic across processes).
 * A lock older than ~5 s belongs to a killed process and is broken.
 * @template T @param {string} deployPath @param {() => T} fn @returns {T}
 */
export function withLock(deployPath, fn) {
  const { lock } = simPaths(deployPath);
  const started = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) {
          rmdirSync(lock);
          continue;
        }
      } catch {
        continue; // released between our mkdir and stat
      }
      if (Date.now() - started > LOCK_GIVE_UP_MS) throw new Error(`simulated host: lock ${lock} held for too long`);
      sleepSync(2 + Math.floor(Math.random() * 6));
    }
  }
  try {
    return fn();
  } finally {
    try {
      rmdirSync(lock);
    } catch {
      /* broken as stale by someone else; nothing to do */
    }
  }
}

/** @param {string} deployPath @returns {SimState} */
export function readState(deployPath) {
  // Writers replace the file by rename, so a plain read always sees a whole version.
  return JSON.parse(readFileSync(simPaths(deployPath).state, 'utf8'));
}

/** Caller must hold the lock. @param {string} deployPath @param {SimState} state */
export function writeStateUnlocked(deployPath, state) {
  const p = simPaths(deployPath).state;
  const tmp = `${p}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, p);
}

/**
 * Read-modify-write under the lock. fn may mutate the draft or return a new state.
 * @param {string} deployPath @param {(draft: SimState) => SimState | void} fn @returns {SimState}
 */
export function updateState(deployPath, fn) {
  return withLock(deployPath, () => {
    const draft = readState(deployPath);
    const ret = fn(draft);
    const next = ret === undefined ? draft : ret;
    writeStateUnlocked(deployPath, next);
    return next;
  });
}

/** @param {string} deployPath @returns {CommandRecord[]} */
export function readCommandLog(deployPath) {
  const p = simPaths(deployPath).commands;
  if (!existsSync(p)) return [];
  /** @type {CommandRecord[]} */
  const out = [];
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      /* a line being written right now; the next read will have it */
    }
  }
  return out;
}

/** @param {string} deployPath @param {CommandRecord} rec */
export function appendCommandRecord(deployPath, rec) {
  // One write call with O_APPEND: lines from concurrent processes never interleave.
  appendFileSync(simPaths(deployPath).commands, JSON.stringify(rec) + '\n');
}

/** @param {string} deployPath */
export function readEnvFile(deployPath) {
  return readFileSync(simPaths(deployPath).env, 'utf8');
}

/** @param {string} deployPath @param {string} text */
export function writeEnvFile(deployPath, text) {
  writeFileSync(simPaths(deployPath).env, text);
}

/**
 * Set (or with null remove) one variable in `.env`, keeping the other lines.
 * @param {string} deployPath @param {string} key @param {string | null} value
 */
export function setEnvVar(deployPath, key, value) {
  const lines = readEnvFile(deployPath).split('\n');
  const re = new RegExp(`^\\s*(export\\s+)?${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=`);
  const kept = lines.filter((l) => !re.test(l));
  if (kept.length && kept[kept.length - 1] === '') kept.pop();
  if (value !== null) kept.push(`${key}=${value}`);
  writeEnvFile(deployPath, kept.join('\n') + '\n');
}

/**
 * Parse a dotenv file the way compose does: `KEY=VALUE`, optional `export `, quotes,
 * `#` comments; a repeated key takes its last value (so `echo X=1 >> .env` wins).
 * @param {string} text @returns {Record<string, string>}
 */
export function parseDotenv(text) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = /** @type {string} */ (m[1]);
    let v = /** @type {string} */ (m[2]);
    if (v.startsWith('"')) {
      const end = v.indexOf('"', 1);
      v = (end === -1 ? v.slice(1) : v.slice(1, end)).replace(/\\n/g, '\n').replace(/\\"/g, '"');
    } else if (v.startsWith("'")) {
      const end = v.indexOf("'", 1);
      v = end === -1 ? v.slice(1) : v.slice(1, end);
    } else {
      v = v.replace(/\s+#.*$/, '').trim();
    }
    out[key] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// createHost
// ---------------------------------------------------------------------------

/** @param {string} tagVariable */
export function composeFileText(tagVariable) {
  return `# Engramia production stack (simulated host for engramia-chatops tests)
name: engramia

services:
  engramia-api:
    image: ghcr.io/engramia/engramia:\${${tagVariable}}
    container_name: engramia-api
    env_file: .env
    command: uvicorn engramia.api.app:create_app --factory --host 0.0.0.0 --port 8000
    depends_on:
      pgvector:
        condition: service_healthy
    restart: unless-stopped

  pgvector:
    image: pgvector/pgvector:pg16
    container_name: pgvector
    environment:
      POSTGRES_USER: engramia
      POSTGRES_DB: engramia
      POSTGRES_PASSWORD: \${POSTGRES_PASSWORD:-pw}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U engramia"]
      interval: 5s
      retries: 10
    volumes:
      - pgdata:/var/lib/postgresql/data
    restart: unless-stopped

  caddy:
    image: caddy:2.8-alpine
    container_name: caddy
    ports:
      - "80:80"
      - "443:443"
    volumes:
      - ./Caddyfile:/etc/caddy/Caddyfile:ro
      - caddy_data:/data
    restart: unless-stopped

volumes:
  pgdata:
  caddy_data:
`;
}

/** @param {string} tag */
export function apiStartupLogs(tag, maintenance = false) {
  const lines = [
    'INFO:     Started server process [1]',
    'INFO:     Waiting for application startup.',
    `{"level": "INFO", "logger": "engramia.api.app", "message": "Engramia ${tag} starting (storage=postgres, auth=env)"}`,
    '{"level": "INFO", "logger": "engramia.api.app", "message": "SECURITY: CORS disabled (no origins configured)."}',
  ];
  if (maintenance) {
    lines.push('{"level": "WARNING", "logger": "engramia.api.middleware", "message": "Maintenance mode active: non-health endpoints return 503"}');
  }
  lines.push('INFO:     Application startup complete.', 'INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)');
  return lines;
}

/**
 * Make rootDir a deploy dir of a healthy host running `runningTag`.
 * @param {string} rootDir @param {CreateHostOptions} [opts]
 */
export function createHost(rootDir, opts = {}) {
  const tagVariable = opts.tagVariable ?? 'IMAGE_TAG';
  const runningTag = opts.runningTag ?? '0.6.0';
  const apiKey = opts.apiKey ?? `engk_${randomBytes(18).toString('hex')}`;
  const registryToken = opts.registryToken ?? `ghp_${randomBytes(18).toString('base64url')}`;
  const secrets = {
    databaseUrl: 'postgresql://engramia:pw@pgvector/engramia',
    openaiKey: `sk-sim-${randomBytes(16).toString('hex')}`,
    stripeKey: `sk_test_${randomBytes(16).toString('hex')}`,
    bootstrapToken: `engb_${randomBytes(12).toString('hex')}`,
  };
  const migrations = defaultMigrations();
  const knownRevs = new Set(migrations.map((m) => m.revision));

  /** @type {Record<string, RemoteTag>} */
  const tags = {};
  const remote = opts.remoteTags ?? { '0.5.9': '030', '0.6.0': '031', '0.6.1': '032' };
  Object.entries(remote).forEach(([tag, meta], i) => {
    const m = typeof meta === 'string' ? { head: meta } : meta;
    tags[tag] = { ...makeRemoteTag(tag, m.head ?? '032', i), ...m };
    const head = /** @type {RemoteTag} */ (tags[tag]).head;
    if (!knownRevs.has(head)) {
      appendMigration(migrations, head);
      knownRevs.add(head);
    }
  });
  if (!tags[runningTag]) {
    tags[runningTag] = makeRemoteTag(runningTag, migrations[migrations.length - 1]?.revision ?? '001', Object.keys(tags).length);
  }
  const runningMeta = /** @type {RemoteTag} */ (tags[runningTag]);

  mkdirSync(join(rootDir, '.sim'), { recursive: true });
  const deployPath = rootDir;
  const paths = simPaths(deployPath);

  const envText = [
    '# Engramia production environment',
    ...(opts.pinnedTagInEnv === false ? [] : [`${tagVariable}=${runningTag}`]),
    'ENGRAMIA_STORAGE=postgres',
    `ENGRAMIA_DATABASE_URL=${secrets.databaseUrl}`,
    'ENGRAMIA_AUTH_MODE=env',
    `ENGRAMIA_API_KEYS=${apiKey}`,
    `OPENAI_API_KEY=${secrets.openaiKey}`,
    `STRIPE_SECRET_KEY=${secrets.stripeKey}`,
    'ENGRAMIA_JSON_LOGS=true',
    'ENGRAMIA_METRICS=true',
    '',
  ].join('\n');
  writeFileSync(paths.env, envText);
  writeFileSync(paths.compose, composeFileText(tagVariable));
  writeFileSync(join(deployPath, 'Caddyfile'), 'api.engramia.dev {\n\treverse_proxy engramia-api:8000\n}\n');
  writeFileSync(paths.commands, '');

  const now = Date.now();
  const upSince = new Date(now - 3 * DAY_MS - 4 * 3600_000).toISOString();
  const dbSince = new Date(now - 41 * DAY_MS).toISOString();

  const apiImage = {
    id: imageIdFor(runningMeta.digest),
    repository: API_IMAGE_REPO,
    tag: runningTag,
    digest: runningMeta.digest,
    sizeBytes: runningMeta.sizeBytes,
    createdAt: runningMeta.buildTime,
  };
  const pgDigest = `sha256:${sha256('pgvector/pgvector:pg16')}`;
  const caddyDigest = `sha256:${sha256('caddy:2.8-alpine')}`;
  // A leftover from an earlier re-push of a tag: what `docker image prune -f` removes.
  const danglingDigest = `sha256:${sha256('ghcr.io/engramia/engramia:0.5.9#0')}`;

  /** @type {SimState} */
  const state = {
    schema: 1,
    project: 'engramia',
    tagVariable,
    composeFile: COMPOSE_FILE,
    apiImage: API_IMAGE_REPO,
    seq: 3,
    registry: {
      host: 'ghcr.io',
      username: null,
      token: registryToken,
      tags,
    },
    images: [
      apiImage,
      { id: imageIdFor(pgDigest), repository: 'pgvector/pgvector', tag: 'pg16', digest: pgDigest, sizeBytes: 434_512_345, createdAt: '2026-02-10T08:12:44Z' },
      { id: imageIdFor(caddyDigest), repository: 'caddy', tag: '2.8-alpine', digest: caddyDigest, sizeBytes: 48_712_004, createdAt: '2026-01-22T17:03:09Z' },
      { id: imageIdFor(danglingDigest), repository: API_IMAGE_REPO, tag: null, digest: danglingDigest, sizeBytes: 391_204_881, createdAt: '2026-03-30T10:41:02Z' },
    ],
    services: {
      [API_SERVICE]: {
        image: null,
        command: 'uvicorn engramia.api.app:create_app --factory --host 0.0.0.0 --port 8000',
        ports: '8000/tcp',
        healthcheck: false,
        dependsOn: [DB_SERVICE],
        envFile: true,
      },
      [DB_SERVICE]: {
        image: 'pgvector/pgvector:pg16',
        command: 'docker-entrypoint.sh postgres',
        ports: '5432/tcp',
        healthcheck: true,
        dependsOn: [],
        envFile: false,
      },
      [PROXY_SERVICE]: {
        image: 'caddy:2.8-alpine',
        command: 'caddy run --config /etc/caddy/Caddyfile --adapter caddyfile',
        ports: '0.0.0.0:80->80/tcp, 0.0.0.0:443->443/tcp, 443/udp, 2019/tcp',
        healthcheck: false,
        dependsOn: [],
        envFile: false,
      },
    },
    containers: {
      [API_SERVICE]: {
        id: sha256(`container:${API_SERVICE}:1`),
        name: API_SERVICE,
        service: API_SERVICE,
        image: `${API_IMAGE_REPO}:${runningTag}`,
        imageId: apiImage.id,
        state: 'running',
        exitCode: 0,
        createdAt: upSince,
        startedAt: upSince,
        finishedAt: null,
        env: parseDotenv(envText),
        health: '',
      },
      [DB_SERVICE]: {
        id: sha256(`container:${DB_SERVICE}:2`),
        name: DB_SERVICE,
        service: DB_SERVICE,
        image: 'pgvector/pgvector:pg16',
        imageId: imageIdFor(pgDigest),
        state: 'running',
        exitCode: 0,
        createdAt: dbSince,
        startedAt: dbSince,
        finishedAt: null,
        env: { POSTGRES_USER: 'engramia', POSTGRES_DB: 'engramia' },
        health: 'healthy',
      },
      [PROXY_SERVICE]: {
        id: sha256(`container:${PROXY_SERVICE}:3`),
        name: PROXY_SERVICE,
        service: PROXY_SERVICE,
        image: 'caddy:2.8-alpine',
        imageId: imageIdFor(caddyDigest),
        state: 'running',
        exitCode: 0,
        createdAt: dbSince,
        startedAt: dbSince,
        finishedAt: null,
        env: {},
        health: '',
      },
    },
    oneOffs: [],
    db: {
      revision: opts.dbRevision === undefined ? runningMeta.head : opts.dbRevision,
      patternCount: opts.patternCount ?? 1234,
      failUpgradeTo: null,
      failDowngradeFrom: null,
      // What `SELECT pg_database_size(current_database())` answers: a small production database.
      sizeBytes: DEFAULT_DB_SIZE_BYTES,
    },
    migrations,
    checks: {
      storage: { status: 'ok', latency_ms: 3.1, error: null },
      llm: { status: 'ok', latency_ms: 820.5, error: null },
      embedding: { status: 'ok', latency_ms: 210.3, error: null },
      redis: { status: 'not_configured', latency_ms: null, error: null },
      stripe: { status: 'ok', latency_ms: 145.2, error: null },
    },
    api: { down: false, hang: false, delayMs: 0, rateLimitPerMinute: 60 },
    logs: {
      [API_SERVICE]: apiStartupLogs(runningTag).concat([
        'INFO:     172.18.0.4:51234 - "GET /v1/health HTTP/1.1" 200 OK',
        'INFO:     172.18.0.4:51240 - "POST /v1/recall HTTP/1.1" 200 OK',
      ]),
      [DB_SERVICE]: [
        'PostgreSQL Database directory appears to contain a database; Skipping initialization',
        '2026-04-14 09:12:01.311 UTC [1] LOG:  starting PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit',
        '2026-04-14 09:12:01.312 UTC [1] LOG:  listening on IPv4 address "0.0.0.0", port 5432',
        '2026-04-14 09:12:01.318 UTC [1] LOG:  database system is ready to accept connections',
      ],
      [PROXY_SERVICE]: [
        '{"level":"info","ts":1776157921.51,"msg":"using config from file","file":"/etc/caddy/Caddyfile"}',
        '{"level":"info","ts":1776157921.53,"logger":"tls","msg":"certificate is valid","identifiers":["api.engramia.dev"]}',
        '{"level":"info","ts":1776157921.54,"msg":"serving initial configuration"}',
      ],
    },
    faults: [],
  };
  withLock(deployPath, () => writeStateUnlocked(deployPath, state));
  return { deployPath, apiKey, registryToken, secrets };
}

/** @param {Migration[]} migrations @param {string} revision */
function appendMigration(migrations, revision) {
  const last = migrations[migrations.length - 1];
  migrations.push({
    revision,
    down: last ? last.revision : null,
    description: `simulated migration ${revision}`,
    createDate: isoToAlembicDate(new Date(Date.UTC(2026, 5, 1) + migrations.length * DAY_MS).toISOString()),
  });
}

// ---------------------------------------------------------------------------
// Derived views shared by docker.mjs and api.mjs
// ---------------------------------------------------------------------------

/** Tag of the image the API container was created from, or null. @param {SimState} state */
export function apiContainerTag(state) {
  const c = state.containers[API_SERVICE];
  if (!c) return null;
  const i = c.image.lastIndexOf(':');
  return i === -1 ? null : c.image.slice(i + 1);
}

/** @param {SimState} state @param {string} service */
export function isRunning(state, service) {
  return state.containers[service]?.state === 'running';
}

/** Alembic head baked into the image for `tag`. @param {SimState} state @param {string | null} tag */
export function imageHead(state, tag) {
  const meta = tag ? state.registry.tags[tag] : undefined;
  return meta ? meta.head : (state.migrations[state.migrations.length - 1]?.revision ?? null);
}

/**
 * The migration scripts an image knows: the chain from 001 up to its head.
 * @param {SimState} state @param {string | null} tag
 */
export function imageMigrations(state, tag) {
  const head = imageHead(state, tag);
  const idx = state.migrations.findIndex((m) => m.revision === head);
  return state.migrations.slice(0, idx + 1);
}

/** @param {string | undefined} v */
export function truthyMaintenance(v) {
  return ['1', 'true', 'yes'].includes(String(v ?? '').trim().toLowerCase());
}

/** Maintenance as the running API process sees it (its container env). @param {SimState} state */
export function apiInMaintenance(state) {
  return truthyMaintenance(state.containers[API_SERVICE]?.env?.ENGRAMIA_MAINTENANCE);
}

const CHECK_ORDER = ['storage', 'llm', 'embedding', 'redis', 'stripe'];

/**
 * What GET /v1/health/deep answers for this state.
 * @param {SimState} state @param {number} [now]
 * @returns {{ httpStatus: number, body: { status: 'ok' | 'degraded' | 'error', version: string | null, uptime_seconds: number, checks: Record<string, Record<string, unknown>> } }}
 */
export function computeDeepHealth(state, now = Date.now()) {
  const dbUp = isRunning(state, DB_SERVICE);
  const tag = apiContainerTag(state);
  /** @type {Record<string, Record<string, unknown>>} */
  const checks = {};
  const names = [...CHECK_ORDER.filter((n) => n in state.checks), ...Object.keys(state.checks).filter((n) => !CHECK_ORDER.includes(n) && n !== 'migration')];
  for (const name of names) {
    const c = state.checks[name] ?? {};
    checks[name] = { ...c, status: c.status ?? 'ok', latency_ms: c.latency_ms ?? null, error: c.error ?? null };
  }
  if (!dbUp && checks.storage) {
    checks.storage = {
      status: 'error',
      latency_ms: 5003.4,
      error: '(psycopg2.OperationalError) could not translate host name "pgvector" to address: Name or service not known',
    };
  }
  const expected = imageHead(state, tag);
  const current = dbUp ? state.db.revision : null;
  /** @type {Record<string, unknown>} */
  let migration;
  if (!dbUp) {
    migration = { status: 'error', latency_ms: 5001.2, error: 'could not read alembic_version: database unreachable', current_revision: null, expected_revision: expected };
  } else if (current === expected) {
    migration = { status: 'ok', latency_ms: 2.0, error: null, current_revision: current, expected_revision: expected };
  } else {
    migration = {
      status: 'error',
      latency_ms: 2.1,
      error: `Database schema revision ${current ?? '<base>'} does not match expected ${expected}`,
      current_revision: current,
      expected_revision: expected,
    };
  }
  if (state.checks.migration) migration = { ...migration, ...state.checks.migration };
  checks.migration = migration;

  const statuses = Object.values(checks).map((c) => c.status).filter((s) => s !== 'not_configured');
  /** @type {'ok' | 'degraded' | 'error'} */
  let overall = 'degraded';
  if (statuses.every((s) => s === 'ok')) overall = 'ok';
  else if (statuses.every((s) => s === 'error')) overall = 'error';

  const c = state.containers[API_SERVICE];
  const since = c?.startedAt ? Date.parse(c.startedAt) : now;
  return {
    httpStatus: overall === 'error' ? 503 : 200,
    body: {
      status: overall,
      version: tag,
      uptime_seconds: Math.round(Math.max(0, now - since) / 100) / 10,
      checks,
    },
  };
}

/**
 * The bytes `pg_dump -Fc` writes for this state: deterministic, binary (not valid
 * UTF-8, contains CR/LF/NUL so TTY or text mangling shows), and dependent on the
 * database revision and pattern count.
 * @param {SimState} state @returns {Buffer}
 */
export function pgDumpBytes(state) {
  const rev = state.db.revision ?? '';
  const parts = [
    Buffer.from('PGDMP', 'latin1'),
    // archive version 1.15.0, int size 4, offset size 8, custom format, compression
    Buffer.from([0x01, 0x0f, 0x00, 0x04, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from('engramia\0' + '16.4 (Debian 16.4-1.pgdg120+2)\0' + '16.4 (Debian 16.4-1.pgdg120+2)\0', 'latin1'),
    Buffer.from(`TABLE DATA public alembic_version engramia\0version_num=${rev}\0`, 'latin1'),
    Buffer.from(`TABLE DATA public memory_patterns engramia\0rows=${state.db.patternCount}\0`, 'latin1'),
    Buffer.from([0x0d, 0x0a, 0x0a, 0x0d, 0x00, 0x80, 0xc3, 0x28, 0xfe, 0xff, 0x1b, 0x5b]),
  ];
  // Pseudo-random table data seeded by the content, so equal states dump equal bytes.
  let block = createHash('sha256').update(`pgdump|${rev}|${state.db.patternCount}`).digest();
  for (let i = 0; i < 96; i++) {
    parts.push(block);
    block = createHash('sha256').update(block).digest();
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------
// Setters for tests
// ---------------------------------------------------------------------------

/** @param {string} deployPath @param {Fault | Fault[]} fault */
export function setFault(deployPath, fault) {
  const list = Array.isArray(fault) ? fault : [fault];
  updateState(deployPath, (s) => {
    s.faults.push(...list.map((f) => clone(f)));
  });
}

/** @param {string} deployPath */
export function clearFaults(deployPath) {
  updateState(deployPath, (s) => {
    s.faults = [];
  });
}

/**
 * Merge into one deep-health check (`migration` overrides the computed one);
 * null removes the check.
 * @param {string} deployPath @param {string} name
 * @param {Partial<DeepCheck> | null} check
 */
export function setDeepCheck(deployPath, name, check) {
  updateState(deployPath, (s) => {
    if (check === null) {
      delete s.checks[name];
      return;
    }
    const base = s.checks[name] ?? (name === 'migration' ? {} : { status: 'ok', latency_ms: null, error: null });
    s.checks[name] = { ...base, ...check };
  });
}

/**
 * Shortcut for the three overall outcomes: 'ok' (all probes fine, db at the image's
 * head), 'degraded' (stripe fails with AuthenticationError), 'error' (every probe fails).
 * @param {string} deployPath @param {'ok' | 'degraded' | 'error'} overall
 */
export function setDeepHealth(deployPath, overall) {
  updateState(deployPath, (s) => {
    const ok = { storage: 3.1, llm: 820.5, embedding: 210.3, stripe: 145.2 };
    for (const [name, latency] of Object.entries(ok)) {
      s.checks[name] = { status: 'ok', latency_ms: latency, error: null };
    }
    s.checks.redis = { status: 'not_configured', latency_ms: null, error: null };
    delete s.checks.migration;
    s.db.revision = imageHead(s, apiContainerTag(s));
    if (overall === 'degraded') {
      s.checks.stripe = { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' };
    } else if (overall === 'error') {
      s.checks.storage = { status: 'error', latency_ms: 5001.0, error: 'OperationalError: connection timed out' };
      s.checks.llm = { status: 'error', latency_ms: 30000.0, error: 'APITimeoutError: Request timed out.' };
      s.checks.embedding = { status: 'error', latency_ms: 30000.0, error: 'APITimeoutError: Request timed out.' };
      s.checks.stripe = { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' };
      s.checks.migration = { status: 'error', latency_ms: 5000.0, error: 'could not read alembic_version' };
    }
  });
}

/** @param {string} deployPath @param {Partial<ApiSettings>} patch */
export function setApi(deployPath, patch) {
  updateState(deployPath, (s) => {
    s.api = { ...s.api, ...patch };
  });
}

/**
 * Put the running API container in or out of maintenance as if it had been re-created
 * from `.env` (also edits `.env` unless `writeEnv: false`).
 * @param {string} deployPath @param {boolean} on @param {{ writeEnv?: boolean }} [opts]
 */
export function setMaintenance(deployPath, on, opts = {}) {
  if (opts.writeEnv !== false) setEnvVar(deployPath, 'ENGRAMIA_MAINTENANCE', on ? 'true' : null);
  updateState(deployPath, (s) => {
    const c = s.containers[API_SERVICE];
    if (!c) return;
    if (on) c.env.ENGRAMIA_MAINTENANCE = 'true';
    else delete c.env.ENGRAMIA_MAINTENANCE;
  });
}

/** @param {string} deployPath @param {string} service @param {Partial<Container>} patch */
export function setContainer(deployPath, service, patch) {
  updateState(deployPath, (s) => {
    const c = s.containers[service];
    if (!c) throw new Error(`simulated host: no container for service ${service}`);
    Object.assign(c, patch);
  });
}

/** Stop a container as if it had exited (crash: pass a non-zero code). @param {string} deployPath @param {string} service */
export function stopContainer(deployPath, service, exitCode = 0) {
  setContainer(deployPath, service, { state: 'exited', exitCode, finishedAt: new Date().toISOString() });
}

/** @param {string} deployPath @param {string} service */
export function startContainer(deployPath, service) {
  setContainer(deployPath, service, { state: 'running', exitCode: 0, startedAt: new Date().toISOString(), finishedAt: null });
}

/**
 * The release `tag` starts crash-looping (as after a bad config or data it chokes on): its image
 * now exits at start, and a running API container of it goes into `restarting`, as the daemon
 * shows a container under `restart: unless-stopped` that keeps dying. With `runningWindow`, it is
 * caught in the second it runs between two restarts, as the real daemon often shows it: `ps` says
 * running (`docker inspect` counts the restarts), and an exec into it dies with it, exit 137.
 * @param {string} deployPath @param {string} tag @param {string[]} [logs] @param {{ runningWindow?: boolean }} [opts]
 */
export function crashLoop(deployPath, tag, logs = ['Traceback (most recent call last):', '  File "/app/engramia/api/app.py", line 61, in lifespan', 'RuntimeError: pattern index is corrupt'], opts = {}) {
  updateState(deployPath, (s) => {
    const meta = s.registry.tags[tag];
    if (!meta) throw new Error(`simulated host: no tag ${tag}`);
    meta.crashOnStart = { exitCode: 1, logs, loop: true, ...(opts.runningWindow ? { runningWindow: true } : {}) };
    const c = s.containers[API_SERVICE];
    if (c && apiContainerTag(s) === tag) {
      const restartCount = (c.restartCount ?? 0) + 3;
      if (opts.runningWindow) Object.assign(c, { state: 'running', exitCode: 0, startedAt: new Date().toISOString(), finishedAt: null, restartCount });
      else Object.assign(c, { state: 'restarting', exitCode: 1, finishedAt: new Date().toISOString(), restartCount });
      s.logs[API_SERVICE] = [...(s.logs[API_SERVICE] ?? []), ...logs];
    }
  });
}

/** @param {string} deployPath @param {string | null} revision */
export function setDbRevision(deployPath, revision) {
  updateState(deployPath, (s) => {
    s.db.revision = revision;
  });
}

/** @param {string} deployPath @param {number} n */
/** What the database reports as its size (pg_database_size), e.g. more than the backup disk holds. @param {string} deployPath @param {number} bytes */
export function setDbSize(deployPath, bytes) {
  updateState(deployPath, (s) => {
    s.db.sizeBytes = bytes;
  });
}

/** @param {string} deployPath @param {number} n */
export function setPatternCount(deployPath, n) {
  updateState(deployPath, (s) => {
    s.db.patternCount = n;
  });
}

/**
 * Make the migration to `upgradeTo` fail during upgrade, or the one from
 * `downgradeFrom` fail during downgrade (null clears).
 * @param {string} deployPath @param {{ upgradeTo?: string | null, downgradeFrom?: string | null }} spec
 */
export function setMigrationFailure(deployPath, spec) {
  updateState(deployPath, (s) => {
    if (spec.upgradeTo !== undefined) s.db.failUpgradeTo = spec.upgradeTo;
    if (spec.downgradeFrom !== undefined) s.db.failDowngradeFrom = spec.downgradeFrom;
  });
}

/**
 * Publish, re-push (new digest) or delete (null) a tag in the registry. A head beyond
 * the known chain appends a new migration.
 * @param {string} deployPath @param {string} tag @param {Partial<RemoteTag> | null} meta
 */
export function setRemoteTag(deployPath, tag, meta) {
  updateState(deployPath, (s) => {
    if (meta === null) {
      delete s.registry.tags[tag];
      return;
    }
    const existing = s.registry.tags[tag];
    const base = existing ?? makeRemoteTag(tag, meta.head ?? (s.migrations[s.migrations.length - 1]?.revision ?? '001'), Object.keys(s.registry.tags).length);
    const next = { ...base, ...meta };
    s.registry.tags[tag] = next;
    if (!s.migrations.some((m) => m.revision === next.head)) appendMigration(s.migrations, next.head);
  });
}

/**
 * Registry hosts with a credential stored in a docker config folder (`auths` of its config.json),
 * with the user each one is for, as `docker login` left them.
 * @param {string} configDir @returns {Record<string, string>}
 */
export function storedCredentials(configDir) {
  const file = join(configDir, 'config.json');
  if (!existsSync(file)) return {};
  const auths = JSON.parse(readFileSync(file, 'utf8')).auths ?? {};
  return Object.fromEntries(Object.entries(auths).map(([h, a]) => [h, Buffer.from(/** @type {any} */ (a).auth ?? '', 'base64').toString('utf8').split(':')[0] ?? '']));
}

/** Install compose for the whole system (default) or only in the SSH user's ~/.docker/cli-plugins. @param {string} deployPath @param {'system' | 'user'} where */
export function setComposePlugin(deployPath, where) {
  updateState(deployPath, (s) => {
    s.composePlugin = where;
  });
}

/** @param {string} deployPath @param {string} service @param {string[]} lines */
export function setLogs(deployPath, service, lines) {
  updateState(deployPath, (s) => {
    s.logs[service] = [...lines];
  });
}

/** @param {string} deployPath @param {string} service @param {string[]} lines */
export function appendLogs(deployPath, service, lines) {
  updateState(deployPath, (s) => {
    s.logs[service] = [...(s.logs[service] ?? []), ...lines];
  });
}

/** @param {string} deployPath */
export function expectedPgDump(deployPath) {
  return pgDumpBytes(readState(deployPath));
}

/** Tags of the API image present locally. @param {string} deployPath */
export function localApiTags(deployPath) {
  return readState(deployPath)
    .images.filter((i) => i.repository === API_IMAGE_REPO && i.tag)
    .map((i) => /** @type {string} */ (i.tag));
}

/** Stopped one-off containers left behind by `compose run` without `--rm`. @param {string} deployPath */
export function oneOffContainers(deployPath) {
  return readState(deployPath).oneOffs ?? [];
}

/** Tag of the image the API container runs (null if none). @param {string} deployPath */
export function runningApiTag(deployPath) {
  return apiContainerTag(readState(deployPath));
}
