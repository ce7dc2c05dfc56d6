// The process-group scripts the executor runs in the SSH user's login shell, run here in dash and
// bash against real process groups: a `kill -- -PID` that dash rejects made a live group look gone
// and left a timed-out command running.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { groupAliveScript, stopGroupScript } from '../../src/ssh/executor.js';

const leaders: ChildProcess[] = [];
afterEach(() => {
  for (const c of leaders.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/**
 * A process group of its own (as sshd makes for each session), optionally deaf to TERM. One process,
 * a child of this one, so it is reaped when it ends (orphans stay zombies in some sandboxes, and
 * `kill -0` counts a zombie as alive).
 */
function group(ignoreTerm = false): { pid: number; ended: Promise<unknown> } {
  const code = `${ignoreTerm ? "process.on('SIGTERM', () => {}); " : ''}setInterval(() => {}, 1000)`;
  const c = spawn(process.execPath, ['-e', code], { detached: true, stdio: 'ignore' });
  leaders.push(c);
  return { pid: c.pid!, ended: once(c, 'exit') };
}

const inShell = (shell: string, script: string) => execFileSync(shell, ['-c', script], { encoding: 'utf8' }).trim();

describe.each(['sh', 'bash'])('process-group scripts in %s', (shell) => {
  it('groupAliveScript says alive for a running group and gone once it ended', async () => {
    const { pid, ended } = group();
    expect(inShell(shell, groupAliveScript(pid))).toBe('alive');
    process.kill(-pid, 'SIGKILL');
    await ended;
    expect(inShell(shell, groupAliveScript(pid))).toBe('gone');
  });

  it('stopGroupScript ends the whole group with TERM, or with KILL after the grace when TERM is ignored', async () => {
    for (const deaf of [false, true]) {
      const { pid, ended } = group(deaf);
      // Long enough for node to have installed its TERM handler.
      await new Promise((r) => setTimeout(r, 300));
      expect(() => inShell(shell, stopGroupScript(pid, 300))).not.toThrow();
      const [, signal] = (await ended) as [number | null, string | null];
      expect(signal, `TERM ${deaf ? 'ignored' : 'heeded'}`).toBe(deaf ? 'SIGKILL' : 'SIGTERM');
      expect(inShell(shell, groupAliveScript(pid))).toBe('gone');
    }
  });
});
