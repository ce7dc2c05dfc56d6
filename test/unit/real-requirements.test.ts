import { describe, expect, it } from 'vitest';
import { REAL_BINARIES, requireRealHost } from '../real/requirements.js';

describe('real-host tier preflight', () => {
  it('fails with one line naming each missing piece and the install command, never a skip', () => {
    const binaries = { ...REAL_BINARIES, dockerd: '/nonexistent/dockerd', compose: '/nonexistent/docker-compose' };
    let message = '';
    try {
      requireRealHost({ isRoot: false, binaries });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toContain('\n');
    expect(message).toBe(
      'real-host tier cannot start: missing root (dockerd needs it), dockerd (/nonexistent/dockerd), ' +
        'compose (/nonexistent/docker-compose); install with: sudo bash scripts/real-host/install.sh',
    );
  });

  it('names the VM sshd and the bot Redis too, which the tier needs as much as Docker', () => {
    const binaries = { ...REAL_BINARIES, sshd: '/nonexistent/sshd', 'redis-server': '/nonexistent/redis-server' };
    expect(() => requireRealHost({ isRoot: true, binaries })).toThrow(
      'real-host tier cannot start: missing sshd (/nonexistent/sshd), redis-server (/nonexistent/redis-server); install with: sudo bash scripts/real-host/install.sh',
    );
  });

  it('passes when root and every binary is there', () => {
    expect(() => requireRealHost({ isRoot: true, binaries: { sh: '/bin/sh' } })).not.toThrow();
  });
});
