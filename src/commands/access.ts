import type { Logger } from '../logger.js';

/** Members of a Slack user group (S…), e.g. from usergroups.users.list. */
export type GroupResolver = (groupId: string) => Promise<string[]>;

const TTL_MS = 5 * 60_000;

/**
 * Answers "is this user in this access list?", where a list may name user
 * groups as well as users. Group members are cached for a few minutes; when
 * they cannot be read the answer is no (fail closed) and the reason is logged.
 */
export class Access {
  readonly #cache = new Map<string, { members: Set<string>; at: number }>();
  // A burst of commands after the cache expired would otherwise ask Slack once each, inside each one's ack
  // window, and usergroups.users.list's rate limit would then turn members away (fail closed).
  readonly #reading = new Map<string, Promise<Set<string>>>();

  constructor(
    private readonly resolve: GroupResolver | undefined,
    private readonly log: Logger,
  ) {}

  async has(user: string, list: readonly string[]): Promise<boolean> {
    if (list.includes(user)) return true;
    for (const id of list) {
      if (!id.startsWith('S') || !this.resolve) continue;
      if ((await this.#members(id)).has(user)) return true;
    }
    return false;
  }

  async #members(groupId: string): Promise<Set<string>> {
    const hit = this.#cache.get(groupId);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.members;
    let reading = this.#reading.get(groupId);
    if (!reading) {
      reading = this.#read(groupId, hit?.members).finally(() => this.#reading.delete(groupId));
      this.#reading.set(groupId, reading);
    }
    return reading;
  }

  async #read(groupId: string, stale: Set<string> | undefined): Promise<Set<string>> {
    try {
      const members = new Set(await this.resolve!(groupId));
      this.#cache.set(groupId, { members, at: Date.now() });
      return members;
    } catch (err) {
      this.log.warn({ group: groupId, err: (err as Error).message }, 'could not read user-group members; treating as not a member');
      return stale ?? new Set();
    }
  }
}
