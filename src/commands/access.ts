import type { Logger } from '../logger.js';

/** Members of a Slack user group (S…), e.g. from usergroups.users.list. */
export type GroupResolver = (groupId: string) => Promise<string[]>;

const TTL_MS = 5 * 60_000;

export interface AccessOptions {
  /** How long a group's members are used before Slack is asked again. */
  ttlMs?: number;
  now?: () => number;
}

/** Why a user is not in a list: `unreadGroups` are groups Slack could not tell the bot about (and the last list is too old). */
export type AccessAnswer = { ok: true } | { ok: false; unreadGroups: string[] };

interface Members {
  members: Set<string>;
  /** Slack could not be asked and no list young enough to use was left. */
  unread?: true;
}

/**
 * Answers "is this user in this access list?", where a list may name user groups as well as users.
 * A group's members are cached for `ttlMs`. When Slack cannot be asked, the last list read is used
 * until it is twice that old; after that members of the group are refused (fail closed), and the
 * answer says it was for that reason, so the person is told why.
 */
export class Access {
  readonly #cache = new Map<string, { members: Set<string>; at: number }>();
  // A burst of commands after the cache expired would otherwise ask Slack once each, inside each one's ack
  // window, and usergroups.users.list's rate limit would then turn members away (fail closed).
  readonly #reading = new Map<string, Promise<Members>>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(
    private readonly resolve: GroupResolver | undefined,
    private readonly log: Logger,
    opts: AccessOptions = {},
  ) {
    this.#ttlMs = opts.ttlMs ?? TTL_MS;
    this.#now = opts.now ?? Date.now;
  }

  async has(user: string, list: readonly string[]): Promise<boolean> {
    return (await this.check(user, list)).ok;
  }

  async check(user: string, list: readonly string[]): Promise<AccessAnswer> {
    if (list.includes(user)) return { ok: true };
    const unreadGroups: string[] = [];
    for (const id of list) {
      if (!id.startsWith('S') || !this.resolve) continue;
      const m = await this.#members(id);
      if (m.members.has(user)) return { ok: true };
      if (m.unread) unreadGroups.push(id);
    }
    return { ok: false, unreadGroups };
  }

  async #members(groupId: string): Promise<Members> {
    const hit = this.#cache.get(groupId);
    if (hit && this.#now() - hit.at < this.#ttlMs) return { members: hit.members };
    let reading = this.#reading.get(groupId);
    if (!reading) {
      reading = this.#read(groupId).finally(() => this.#reading.delete(groupId));
      this.#reading.set(groupId, reading);
    }
    return reading;
  }

  async #read(groupId: string): Promise<Members> {
    try {
      const members = new Set(await this.resolve!(groupId));
      this.#cache.set(groupId, { members, at: this.#now() });
      return { members };
    } catch (err) {
      const stale = this.#cache.get(groupId);
      const age = stale ? this.#now() - stale.at : undefined;
      const error = (err as Error).message;
      if (stale && age !== undefined && age < 2 * this.#ttlMs) {
        this.log.warn({ group: groupId, err: error, ageS: Math.round(age / 1000), maxStaleS: Math.round((2 * this.#ttlMs) / 1000) }, 'could not read user-group members; using the list read earlier (allowed until it is twice the cache lifetime old)');
        return { members: stale.members };
      }
      this.log.warn(
        { group: groupId, err: error, ...(age !== undefined ? { ageS: Math.round(age / 1000) } : {}) },
        stale ? 'could not read user-group members and the list read earlier is too old to trust; members of the group are refused' : 'could not read user-group members and none were read before; members of the group are refused',
      );
      return { members: new Set(), unread: true };
    }
  }
}

/** What a refused person is told when the reason is a group Slack would not list. */
export function unreadGroupsHint(groups: readonly string[]): string {
  return `Slack could not be asked who is in ${groups.join(', ')}, and the list the bot read before is too old to trust, so membership through ${groups.length > 1 ? 'these groups' : 'that group'} counts for nothing right now. Try again once Slack answers, or ask an admin to list you by user id.`;
}
