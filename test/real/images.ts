// Images without the internet. One Debian root filesystem (debootstrap of bookworm, minbase, with
// PostgreSQL 15 and python3's alembic, SQLAlchemy and psycopg2) is made once per machine and kept
// as a tar named by the hash of its recipe; each run `docker import`s it into its fresh daemon and
// builds the pgvector and engramia-api images on it (classic builder, no network), then pushes
// them to the test registry.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../world/proc.js';
import { docker, run, type DockerTarget } from './docker-cli.js';
import { migrationsOf, RELEASES, type Release } from './releases.js';
import { REAL_BINARIES } from './requirements.js';

const IMAGES_DIR = fileURLToPath(new URL('./images', import.meta.url));
const API_DIR = path.join(IMAGES_DIR, 'engramia-api');
const PG_DIR = path.join(IMAGES_DIR, 'pgvector');
const CADDY_DIR = path.join(IMAGES_DIR, 'caddy');

/** What goes into the base root filesystem; any change here makes a new cached tar. */
const BASE_RECIPE = {
  recipe: 1,
  suite: 'bookworm',
  variant: 'minbase',
  include: ['postgresql-15', 'python3-alembic', 'python3-sqlalchemy', 'python3-psycopg2'],
  // Downloaded packages, apt lists, docs, and the cluster the postinst made: not needed at run time.
  prune: [
    'var/cache/apt/archives',
    'var/lib/apt/lists',
    'usr/share/doc',
    'usr/share/man',
    'var/lib/postgresql/15/main',
    'etc/postgresql/15/main',
  ],
} as const;

export interface ImageTimings {
  /** 0 when the cached tar was used. */
  rootfsMs: number;
  importMs: number;
  buildMs: number;
  pushMs: number;
}

export interface BuiltImages {
  readonly base: string;
  /** Registry name of the database image, e.g. 127.0.0.1:PORT/pgvector/pgvector:pg15. */
  readonly pgvector: string;
  /** Registry name of the proxy image, e.g. 127.0.0.1:PORT/library/caddy:2. */
  readonly caddy: string;
  /** Registry repository of the API, e.g. 127.0.0.1:PORT/engramia/engramia (tags are release tags). */
  readonly apiRepository: string;
  readonly timings: ImageTimings;
}

export function cacheDir(): string {
  return process.env.ENGRAMIA_REAL_CACHE ?? '/var/cache/engramia-real';
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The main archive URI from the machine's own apt sources (so no mirror is written down here). */
export function systemMirror(): string {
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    for (const line of readFileSync(deb822, 'utf8').split('\n')) {
      const m = /^URIs:\s*(.+)$/.exec(line);
      const uri = m?.[1]?.split(/\s+/).find((u) => !u.includes('security'));
      if (uri) return uri;
    }
  }
  const legacy = '/etc/apt/sources.list';
  if (existsSync(legacy)) {
    for (const line of readFileSync(legacy, 'utf8').split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line);
      if (m?.[1] && !m[1].includes('security')) return m[1];
    }
  }
  throw new Error('real-host tier: no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list');
}

const niced = (argv: string[]): [string, string[]] => ['nice', ['-n', '19', 'ionice', '-c3', ...argv]];

/** Path of the cached base rootfs tar, making it (debootstrap, ~2.5 min) when it is not there. */
export async function baseRootfsTar(): Promise<{ tar: string; hash: string; madeMs: number }> {
  const hash = sha256(JSON.stringify(BASE_RECIPE)).slice(0, 16);
  const dir = cacheDir();
  const tar = path.join(dir, `debian-base-${hash}.tar`);
  if (existsSync(tar)) return { tar, hash, madeMs: 0 };

  const started = Date.now();
  mkdirSync(dir, { recursive: true });
  const work = path.join(dir, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const rootfs = path.join(work, 'rootfs');
  try {
    const [cmd, args] = niced([
      REAL_BINARIES.debootstrap,
      `--variant=${BASE_RECIPE.variant}`,
      `--include=${BASE_RECIPE.include.join(',')}`,
      BASE_RECIPE.suite,
      rootfs,
      systemMirror(),
    ]);
    await run(cmd, args, { timeoutMs: 20 * 60_000 });
    for (const p of BASE_RECIPE.prune) rmSync(path.join(rootfs, p), { recursive: true, force: true });
    const partial = `${tar}.partial-${process.pid}`;
    const [tcmd, targs] = niced(['tar', '--numeric-owner', '-C', rootfs, '-cf', partial, '.']);
    await run(tcmd, targs);
    renameSync(partial, tar); // atomic: a half-written tar is never taken for a cached one
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { tar, hash, madeMs: Date.now() - started };
}

async function imageLabel(target: DockerTarget, image: string, label: string): Promise<string | null> {
  const r = await docker(target, ['image', 'inspect', '-f', `{{index .Config.Labels "${label}"}}`, image], { allowFailure: true });
  return r.code === 0 ? r.stdout.trim() : null;
}

const HASH_LABEL = 'org.engramia.test.hash';
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Hash of every file under `dir` (names and contents), in a stable order. */
export function hashTree(dir: string, files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort()) h.update(f).update('\0').update(readFileSync(path.join(dir, f))).update('\0');
  return h.digest('hex');
}

/** `docker build` (classic builder, no network) unless an image with the same content hash exists. */
export async function buildOnce(
  target: DockerTarget,
  opts: { context: string; tag: string; hash: string; buildArgs: Record<string, string> },
): Promise<void> {
  if ((await imageLabel(target, opts.tag, HASH_LABEL)) === opts.hash) return;
  const args = ['build', '--network', 'none', '--label', `${HASH_LABEL}=${opts.hash}`, '-t', opts.tag];
  for (const [k, v] of Object.entries(opts.buildArgs)) args.push('--build-arg', `${k}=${v}`);
  // BuildKit cannot build with the daemon's --bridge=none; the classic builder can.
  await docker(target, [...args, opts.context], { env: { DOCKER_BUILDKIT: '0' } });
}

/** Build context of one API release: the Dockerfile, and under app/ the server and its migrations. */
function apiContext(rel: Release, into: string): string[] {
  const ctx = path.join(into, `api-${rel.tag}`);
  const versionsSrc = path.join(API_DIR, 'migrations', 'versions');
  const versionsDst = path.join(ctx, 'app', 'migrations', 'versions');
  mkdirSync(versionsDst, { recursive: true, mode: 0o755 });
  const files = ['Dockerfile', 'alembic', 'app/server.py', 'app/alembic.ini', 'app/migrations/env.py'];
  copyFileSync(path.join(API_DIR, 'Dockerfile'), path.join(ctx, 'Dockerfile'));
  copyFileSync(path.join(API_DIR, 'alembic'), path.join(ctx, 'alembic'));
  copyFileSync(path.join(API_DIR, 'server.py'), path.join(ctx, 'app', 'server.py'));
  copyFileSync(path.join(API_DIR, 'alembic.ini'), path.join(ctx, 'app', 'alembic.ini'));
  copyFileSync(path.join(API_DIR, 'migrations', 'env.py'), path.join(ctx, 'app', 'migrations', 'env.py'));
  for (const f of migrationsOf(rel, readdirSync(versionsSrc))) {
    copyFileSync(path.join(versionsSrc, f), path.join(versionsDst, f));
    files.push(`app/migrations/versions/${f}`);
  }
  return [ctx, ...files];
}

export async function loginHarness(target: DockerTarget, registry: { address: string; username: string; password: string }): Promise<void> {
  await docker(target, ['login', registry.address, '-u', registry.username, '--password-stdin'], { input: `${registry.password}\n` });
}

/**
 * Builds the base, pgvector and every release's API image in `target`, pushes them to the
 * registry, then removes the registry-named tags from the daemon, so a deploy host has to pull
 * them (the base layers stay, so a pull fetches only the small application layer).
 */
export async function buildAndPushImages(
  target: DockerTarget,
  registry: { address: string; username: string; password: string },
): Promise<BuiltImages> {
  const { tar, hash, madeMs } = await baseRootfsTar();
  const base = `engramia-test/debian-base:${hash}`;

  let t = Date.now();
  if ((await docker(target, ['image', 'inspect', base], { allowFailure: true })).code !== 0) {
    // An imported image has no config at all: without a PATH, `exec` finds no program.
    await docker(target, ['import', '--change', `ENV PATH=${IMAGE_PATH}`, tar, base]);
  }
  const importMs = Date.now() - t;

  t = Date.now();
  const work = makeTempDir('engramia-images-');
  const pgvector = `${registry.address}/pgvector/pgvector:pg15`;
  const pgFiles = ['Dockerfile', 'entrypoint.sh'];
  await buildOnce(target, {
    context: PG_DIR,
    tag: pgvector,
    hash: sha256(base + hashTree(PG_DIR, pgFiles)),
    buildArgs: { BASE: base },
  });
  const caddy = `${registry.address}/library/caddy:2`;
  const caddyCtx = path.join(work, 'caddy');
  mkdirSync(caddyCtx, { mode: 0o755 });
  const caddyFiles = ['Dockerfile', 'Caddyfile', 'caddy'];
  copyFileSync(path.join(CADDY_DIR, 'Dockerfile'), path.join(caddyCtx, 'Dockerfile'));
  copyFileSync(path.join(CADDY_DIR, 'Caddyfile'), path.join(caddyCtx, 'Caddyfile'));
  copyFileSync(REAL_BINARIES.caddy, path.join(caddyCtx, 'caddy'));
  await buildOnce(target, { context: caddyCtx, tag: caddy, hash: sha256(base + hashTree(caddyCtx, caddyFiles)), buildArgs: { BASE: base } });

  const apiRepository = `${registry.address}/engramia/engramia`;
  // One at a time: the machine has two cores shared with the rest of the tests.
  for (const rel of RELEASES) {
    const [ctx, ...files] = apiContext(rel, work);
    const buildArgs = { BASE: base, APP_VERSION: rel.tag, GIT_COMMIT: rel.gitCommit, BUILD_TIME: rel.buildTime, FAULT: rel.fault };
    await buildOnce(target, {
      context: ctx!,
      tag: `${apiRepository}:${rel.tag}`,
      hash: sha256(JSON.stringify(buildArgs) + hashTree(ctx!, files)),
      buildArgs,
    });
  }
  rmSync(work, { recursive: true, force: true });
  const buildMs = Date.now() - t;

  t = Date.now();
  await loginHarness(target, registry);
  const names = [pgvector, caddy, ...RELEASES.map((r) => `${apiRepository}:${r.tag}`)];
  for (const name of names) await docker(target, ['push', name]);
  await docker(target, ['logout', registry.address]);
  await docker(target, ['rmi', ...names]);
  const pushMs = Date.now() - t;

  writeFileSync(path.join(cacheDir(), 'last-used'), `${new Date().toISOString()} ${base}\n`);
  return { base, pgvector, caddy, apiRepository, timings: { rootfsMs: madeMs, importMs, buildMs, pushMs } };
}
