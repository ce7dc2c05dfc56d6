// Preflight for the test "world": the suite runs a real redis-server and a real OpenSSH sshd,
// so fail once, early, with an actionable message instead of a dozen cryptic spawn errors.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export const INSTALL_COMMAND = 'sudo apt-get install -y redis-server openssh-server openssh-client';

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` on PATH (or `name` itself if it already contains a slash), or null. */
export function findBinary(name: string): string | null {
  if (name.includes('/')) return isExecutable(name) ? path.resolve(name) : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/**
 * sshd insists on being started by absolute path (it re-execs itself), and /usr/sbin is often
 * not on a non-root developer's PATH, so prefer the Debian location and fall back to PATH.
 */
export function findSshd(): string | null {
  return findBinary('/usr/sbin/sshd') ?? findBinary('sshd');
}

/** Throws one Error naming every missing binary and the command that installs them all. */
export function requireBinaries(): void {
  const missing: string[] = [];
  if (!findBinary('redis-server')) missing.push('redis-server (package redis-server)');
  if (!findSshd()) missing.push('/usr/sbin/sshd (package openssh-server)');
  if (!findBinary('ssh-keygen')) missing.push('ssh-keygen (package openssh-client)');
  if (missing.length > 0) {
    throw new Error(
      `The test suite starts a real redis-server and OpenSSH sshd, but these binaries are missing:\n` +
        missing.map((m) => `  - ${m}\n`).join('') +
        `Install them with:\n  ${INSTALL_COMMAND}`,
    );
  }
}
