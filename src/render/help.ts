import type { CommandSpec } from '../commands/specs.js';
import { code, esc, type Msg, type Part } from './model.js';

export interface HelpView {
  commands: readonly CommandSpec[];
  access: { deployers: readonly string[]; approvers: readonly string[]; admins: readonly string[] };
  /** Empty: commands are accepted anywhere. */
  allowedChannels: readonly string[];
  envNames: readonly string[];
  defaultEnv: string | undefined;
}

type Role = 'anyone' | 'deployers' | 'admins' | 'requester';

/** The same rule the command path enforces (handle.ts checkRole), said in words. */
export function roleOf(spec: Pick<CommandSpec, 'name' | 'mutating'>): Role {
  if (spec.name === 'unlock') return 'admins';
  if (spec.name === 'cancel') return 'requester';
  return spec.mutating ? 'deployers' : 'anyone';
}

/** A long list would crowd out the commands; the config holds the rest. */
const MEMBERS_SHOWN = 8;

function member(id: string): string {
  if (/^[UW][A-Z0-9]+$/.test(id)) return `<@${id}>`;
  if (/^S[A-Z0-9]+$/.test(id)) return `<!subteam^${id}>`;
  return esc(id);
}

function members(list: readonly string[]): string {
  if (list.length === 0) return '_nobody is configured_';
  const shown = list.slice(0, MEMBERS_SHOWN).map(member).join(', ');
  return list.length > MEMBERS_SHOWN ? `${shown} and ${list.length - MEMBERS_SHOWN} more` : shown;
}

const SHORT: Record<Role, string> = {
  anyone: 'anyone',
  deployers: 'deployers',
  admins: 'admins',
  requester: 'who started the job, or admins',
};

const GROUPS: Array<{ title: string; roles: Role[] }> = [
  { title: 'Read-only', roles: ['anyone'] },
  { title: 'Change the host', roles: ['deployers'] },
  { title: 'Jobs and locks', roles: ['requester', 'admins'] },
];

function commandText(s: CommandSpec): string {
  const soon = s.available ? '' : ' _(not available yet)_';
  return `${code(`/engramia ${s.usage}`)}${soon}\n${esc(s.summary)}\ne.g. ${code(`/engramia ${s.example}`)} · 👤 ${SHORT[roleOf(s)]}`;
}

/**
 * Usage, an example and who may run each command, from the live access lists. About 20 blocks,
 * each section a few hundred characters: well inside Slack's 50 blocks and 3000 characters.
 */
export function helpMsg(v: HelpView): Msg {
  const where = v.allowedChannels.length === 0 ? 'anyone' : `anyone in ${v.allowedChannels.map((c) => `<#${c}>`).join(', ')}`;
  const who: Record<Role, string> = {
    anyone: where,
    deployers: `deployers (\`access.deployers\`): ${members(v.access.deployers)}`,
    admins: `admins (\`access.admins\`): ${members(v.access.admins)}`,
    requester: 'the person who started the job, or an admin',
  };
  const envs = v.envNames.map(code).join(', ');
  const parts: Part[] = [
    { type: 'header', text: 'Engramia ChatOps: commands' },
    {
      type: 'section',
      text: `Type ${code('/engramia COMMAND')}. ${code('ENV')} is one of ${envs || '_none_'}${v.defaultEnv ? `; without it, ${code(v.defaultEnv)} is used` : '; name it every time (no default)'}. It may also be written ${code('--env ENV')}.`,
    },
  ];
  for (const g of GROUPS) {
    const specs = v.commands.filter((s) => g.roles.includes(roleOf(s)));
    if (specs.length === 0) continue;
    parts.push({ type: 'divider' });
    parts.push({ type: 'section', text: `*${g.title}*: ${g.roles.map((r) => who[r]).join('; ')}` });
    for (const s of specs) parts.push({ type: 'section', text: commandText(s) });
  }
  parts.push({
    type: 'context',
    items: [
      `Buttons in a job's thread (approve, maintenance, downgrade, rollback, retry): approvers (\`access.approvers\`): ${members(v.access.approvers)}, and admins. With four-eyes on, never the person who started the job.`,
    ],
  });
  return { summary: 'Engramia ChatOps commands', parts };
}
