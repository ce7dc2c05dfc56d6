// Unit tests for src/jobs/logs.ts: what a host's log output becomes before it is shown.
import { describe, expect, it } from 'vitest';
import { cleanLogLines } from '../../src/jobs/logs.js';
import { apiLogs } from '../../src/runbooks/commands.js';
import { renderCommand } from '../../src/ssh/quote.js';

describe('cleanLogLines', () => {
  it('drops the compose prefix, colour codes, carriage returns and control characters', () => {
    const out = cleanLogLines('engramia-api  | \x1b[32mINFO\x1b[0m:     ok\r\nengramia-engramia-api-1  | second\x07 line\n\n', []);
    expect(out).toEqual(['INFO:     ok', 'second line']);
  });

  it('reads Compose 2.26 as the real-host tier prints it: ESC[2K before each line, the container name without the project', () => {
    const real = '\x1b[2Kengramia-api-1  | INFO:     Started server process [1]\n\x1b[2Kengramia-api-1  | INFO:     172.17.0.4:36972 - "GET /v1/version HTTP/1.1" 200\n';
    expect(cleanLogLines(real, [])).toEqual(['INFO:     Started server process [1]', 'INFO:     172.17.0.4:36972 - "GET /v1/version HTTP/1.1" 200']);
  });

  it('keeps a line that merely contains a pipe', () => {
    expect(cleanLogLines('INFO: a | b', [])).toEqual(['INFO: a | b']);
  });

  it('removes known secrets and token-like values', () => {
    const out = cleanLogLines('engramia-api  | key engk_123456789 and sk_live_abcdefghijkl\nengramia-api  | OPENAI_API_KEY=whatever', ['engk_123456789']);
    expect(out).toEqual(['key [redacted] and [redacted]', 'OPENAI_API_KEY=[redacted]']);
  });
});

describe('apiLogs', () => {
  it('is compose logs with the tail as one word, stderr merged by a fixed script', () => {
    const env = { deployPath: '/opt/engramia', composeFile: 'docker-compose.prod.yml', tagVariable: 'IMAGE_TAG' } as never;
    const cmd = apiLogs(env, 250);
    expect(cmd.argv).toEqual(['sh', '-c', 'exec "$@" 2>&1', 'chatops-logs', 'docker', 'compose', '-f', 'docker-compose.prod.yml', 'logs', '--tail=250', 'engramia-api']);
    expect(cmd.env).toBeUndefined();
    expect(renderCommand(cmd)).toBe(`cd /opt/engramia && sh -c 'exec "$@" 2>&1' chatops-logs docker compose -f docker-compose.prod.yml logs '--tail=250' engramia-api`);
  });
});
