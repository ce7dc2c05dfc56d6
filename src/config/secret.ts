import { inspect } from 'node:util';

/**
 * Holds a secret so that logging, JSON-serialising or string-formatting it by
 * accident prints a placeholder. Only `reveal()` gives the value, which makes
 * every real use greppable.
 */
export class Secret {
  readonly #value: string;
  /** Where the value came from (an env var name): safe to show. */
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return `[secret ${this.source}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
