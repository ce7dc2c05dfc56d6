// Base images for building and running the bot's own packaging (Dockerfile, docker-compose.yml)
// without Docker Hub: a Node base (this machine's node and npm) and a Redis 7 (this machine's
// redis-server with the libraries `ldd` lists), both on the tier's Debian base. The bot's image
// itself is built by Compose from the project's Dockerfile, FROM the Node base.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../world/proc.js';
import type { DockerTarget } from './docker-cli.js';
import { buildOnce, sha256 } from './images.js';

const IMAGES_DIR = fileURLToPath(new URL('./images', import.meta.url));
const NODE = '/usr/bin/node';
/** The machine's trusted CAs (npm's global npmrc here names this file as its cafile). */
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const REDIS_BINARIES = ['/usr/bin/redis-server', '/usr/bin/redis-cli'];
/** The C library and its loader are the base's own (same Debian release): copying them would only shadow them. */
const FROM_BASE = /^(linux-vdso|libc\.so|libm\.so|ld-linux)/;

export interface BotBaseImages {
  nodeImage: string;
  redisImage: string;
}

const version = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim();

/** The shared libraries `ldd` lists for `binaries`, by resolved path, minus the base's own. */
function libraries(binaries: readonly string[]): Map<string, string> {
  const libs = new Map<string, string>();
  for (const bin of binaries) {
    for (const line of version(['ldd', bin]).split('\n')) {
      const m = /^\s*(\S+) => (\/\S+)/.exec(line);
      if (m && !FROM_BASE.test(m[1]!)) libs.set(m[1]!, m[2]!);
    }
  }
  return libs;
}

function nodeContext(into: string): string {
  const ctx = path.join(into, 'node-base');
  mkdirSync(ctx, { mode: 0o755 });
  copyFileSync(path.join(IMAGES_DIR, 'node-base', 'Dockerfile'), path.join(ctx, 'Dockerfile'));
  copyFileSync(NODE, path.join(ctx, 'node'));
  const npmDir = path.join(path.dirname(realpathSync('/usr/bin/npm')), '..');
  cpSync(npmDir, path.join(ctx, 'npm'), { recursive: true, dereference: true });
  copyFileSync(CA_BUNDLE, path.join(ctx, 'ca-certificates.crt'));
  return ctx;
}

function redisContext(into: string): string {
  const ctx = path.join(into, 'redis');
  // Every folder 0755: a 0700 parent in the image would make the binaries unreachable for non-root.
  const bin = path.join(ctx, 'rootfs', 'usr', 'bin');
  const lib = path.join(ctx, 'rootfs', 'usr', 'lib', 'x86_64-linux-gnu');
  for (const d of [ctx, bin, lib]) mkdirSync(d, { recursive: true, mode: 0o755 });
  copyFileSync(path.join(IMAGES_DIR, 'redis', 'Dockerfile'), path.join(ctx, 'Dockerfile'));
  for (const b of REDIS_BINARIES) copyFileSync(b, path.join(bin, path.basename(b)));
  // Under /usr/lib, not /lib: on the merged-/usr base /lib is a symlink a COPY must not replace.
  for (const [soname, file] of libraries(REDIS_BINARIES)) copyFileSync(file, path.join(lib, soname));
  return ctx;
}

/** Builds (once per daemon) the Node and Redis bases the bot's packaging runs on here. */
export async function buildBotBaseImages(target: DockerTarget, base: string): Promise<BotBaseImages> {
  const work = makeTempDir('engramia-bot-images-');
  try {
    const nodeVersion = version([NODE, '--version']);
    const nodeImage = `engramia-test/node:${nodeVersion.replace(/^v/, '')}`;
    await buildOnce(target, { context: nodeContext(work), tag: nodeImage, hash: sha256(`${base} ${nodeVersion} ${version(['/usr/bin/npm', '--version'])} ${readFileSync(CA_BUNDLE, 'utf8')}`), buildArgs: { BASE: base } });
    const redisVersion = version([REDIS_BINARIES[0]!, '--version']);
    const redisImage = 'engramia-test/redis:7';
    await buildOnce(target, { context: redisContext(work), tag: redisImage, hash: sha256(`${base} ${redisVersion} ${readFileSync(path.join(IMAGES_DIR, 'redis', 'Dockerfile'), 'utf8')}`), buildArgs: { BASE: base } });
    return { nodeImage, redisImage };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
