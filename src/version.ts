import { readFileSync } from 'node:fs';

/** The bot's own version, from package.json next to dist/ or src/. */
export const BOT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
