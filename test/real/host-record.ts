// The VM's own record of the docker commands it ran (written by deploy-host.ts's dockerRecorder),
// read the way the world tier reads the simulated host's command log.
import { readFileSync } from 'node:fs';

export interface HostCommand {
  pid: number;
  cwd: string;
  /** "docker ARGS…", arguments joined by spaces (for matching, not for re-running). */
  line: string;
  /** Exit code when the command ran to its end; undefined while it runs or when it was killed. */
  exitCode?: number;
}

/** Every docker command run in the deploy folder `cwd`, in the order they started. */
export function hostCommands(logPath: string, cwd: string): HostCommand[] {
  const open = new Map<number, HostCommand>();
  const all: HostCommand[] = [];
  for (const raw of readFileSync(logPath, 'utf8').split('\n')) {
    const [phase, pidText, a, ...rest] = raw.split('\t');
    const pid = Number(pidText);
    if (phase === 'start') {
      const c: HostCommand = { pid, cwd: a ?? '', line: rest.join('\t') };
      open.set(pid, c);
      all.push(c);
    } else if (phase === 'end') {
      const c = open.get(pid);
      if (c) c.exitCode = Number(a);
      open.delete(pid);
    }
  }
  return all.filter((c) => c.cwd === cwd);
}

const has = (c: HostCommand, needle: string) => c.line.includes(needle);
/** Commands matching `needle` that ran to their end (the recorder wrote their exit code). */
export const completedOnHost = (cmds: HostCommand[], needle: string) => cmds.filter((c) => c.exitCode !== undefined && has(c, needle));
/** Every process the host started for `needle`, finished or not. */
export const startedOnHost = (cmds: HostCommand[], needle: string) => cmds.filter((c) => has(c, needle));
