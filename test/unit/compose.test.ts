// Unit tests for src/engramia/compose.ts: reading `docker compose ps` and `.env`, and building
// compose invocations that carry the image tag themselves (no shell state between SSH commands).
import { describe, expect, it } from 'vitest';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { compose, imageTag, inDeployDir, isTruthyFlag, parseComposePs, parseEnvLines } from '../../src/engramia/compose.js';
import { renderCommand } from '../../src/ssh/quote.js';

function envConfig(over: Partial<EnvironmentConfig> = {}): EnvironmentConfig {
  return {
    name: 'production',
    default: true,
    fourEyes: true,
    requireApproval: false,
    ssh: {
      host: '203.0.113.10',
      port: 22,
      username: 'deploy',
      privateKeyPath: '/run/secrets/deploy_key',
      hostKeySha256: `SHA256:${'A'.repeat(43)}`,
      readyTimeoutMs: 15_000,
      maxSessions: 8,
    },
    deployPath: '/opt/engramia',
    composeFile: 'docker-compose.prod.yml',
    tagVariable: 'IMAGE_TAG',
    apiBaseUrl: 'https://api.engramia.dev',
    apiKeyEnv: 'ENGRAMIA_PROD_API_KEY',
    registry: { host: 'ghcr.io', username: 'engramia-bot', tokenEnv: 'GHCR_TOKEN' },
    gateTimeoutSeconds: 900,
    verifySettleSeconds: 60,
    maintenanceWarnMinutes: 30,
    backups: { keep: 10 },
    timeouts: { login: 60, pull: 900, up: 300, migrate: 900, snapshot: 1800, command: 60 },
    ...over,
  };
}

// What `docker compose ps -a --format json` prints (compose v2.21+: one object per line).
const API_ROW = {
  Command: '"uvicorn engramia.api.app:app"',
  CreatedAt: '2025-05-01 10:00:00 +0000 UTC',
  ExitCode: 0,
  Health: 'healthy',
  ID: 'abc123',
  Image: 'ghcr.io/engramia/engramia:0.6.1',
  Labels: 'com.docker.compose.project=engramia',
  Name: 'engramia-engramia-api-1',
  Project: 'engramia',
  Publishers: [{ URL: '', TargetPort: 8000, PublishedPort: 0, Protocol: 'tcp' }],
  RunningFor: '2 hours ago',
  Service: 'engramia-api',
  Size: '0B',
  State: 'running',
  Status: 'Up 2 hours (healthy)',
};
const PG_ROW = { ...API_ROW, Health: '', Image: 'pgvector/pgvector:pg16', Name: 'engramia-pgvector-1', Service: 'pgvector', Status: 'Up 3 days' };
const CADDY_ROW = { ...API_ROW, Health: '', Image: 'caddy:2', Name: 'engramia-caddy-1', Service: 'caddy', State: 'exited', Status: 'Exited (1) 5 minutes ago' };

describe('parseComposePs', () => {
  const expected = [
    { service: 'engramia-api', id: 'abc123', name: 'engramia-engramia-api-1', image: 'ghcr.io/engramia/engramia:0.6.1', tag: '0.6.1', state: 'running', status: 'Up 2 hours (healthy)', health: 'healthy' },
    { service: 'pgvector', id: 'abc123', name: 'engramia-pgvector-1', image: 'pgvector/pgvector:pg16', tag: 'pg16', state: 'running', status: 'Up 3 days', health: '' },
    { service: 'caddy', id: 'abc123', name: 'engramia-caddy-1', image: 'caddy:2', tag: '2', state: 'exited', status: 'Exited (1) 5 minutes ago', health: '' },
  ];

  it('reads JSON lines (compose v2.21+)', () => {
    const out = [API_ROW, PG_ROW, CADDY_ROW].map((r) => JSON.stringify(r)).join('\n') + '\n';
    expect(parseComposePs(out)).toEqual(expected);
  });

  it('reads one JSON array (older compose v2)', () => {
    expect(parseComposePs(JSON.stringify([API_ROW, PG_ROW, CADDY_ROW]))).toEqual(expected);
    expect(parseComposePs(JSON.stringify([API_ROW, PG_ROW, CADDY_ROW], null, 2))).toEqual(expected);
  });

  it('tolerates CRLF line ends, blank lines and surrounding whitespace', () => {
    const out = `\r\n  ${JSON.stringify(API_ROW)}\r\n\r\n${JSON.stringify(PG_ROW)}\r\n  \n`;
    expect(parseComposePs(out)).toEqual(expected.slice(0, 2));
  });

  it('an empty project is an empty list', () => {
    expect(parseComposePs('')).toEqual([]);
    expect(parseComposePs('  \n')).toEqual([]);
    expect(parseComposePs('[]')).toEqual([]);
  });

  it('fills missing fields with safe defaults', () => {
    expect(parseComposePs('{"Service":"x"}')).toEqual([{ service: 'x', name: '', image: '', tag: undefined, state: 'unknown', status: '', health: '' }]);
  });

  it('throws on output that is not JSON (the caller reports it)', () => {
    expect(() => parseComposePs('NAME   IMAGE   STATUS\nengramia-api  ghcr.io/x:1  Up')).toThrow();
    expect(() => parseComposePs('{"Service":"x"}\nnot json')).toThrow();
  });
});

describe('imageTag', () => {
  it.each([
    ['ghcr.io/engramia/engramia:0.6.1', '0.6.1'],
    ['engramia:latest', 'latest'],
    ['caddy:2', '2'],
    ['localhost:5000/engramia:0.6.1', '0.6.1'],
    ['registry.example.com:5000/team/engramia:0.7.0-rc.1', '0.7.0-rc.1'],
    ['ghcr.io/engramia/engramia:0.6.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', '0.6.1'],
    ['[::1]:5000/engramia:1.2', '1.2'],
  ])('%s → %s', (image, tag) => {
    expect(imageTag(image)).toBe(tag);
  });

  it.each([
    'ghcr.io/engramia/engramia',
    'engramia',
    'localhost:5000/engramia',
    'ghcr.io/engramia/engramia@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    'localhost:5000/engramia@sha256:abc',
    '',
  ])('%j has no tag', (image) => {
    expect(imageTag(image)).toBeUndefined();
  });
});

describe('isTruthyFlag', () => {
  it.each(['1', 'true', 'TRUE', 'True', 'yes', 'YES', 'Yes', ' true ', '"true"', "'1'", '"YES"'])('%j is on', (v) => {
    expect(isTruthyFlag(v)).toBe(true);
  });

  it.each([undefined, '', '0', 'false', 'no', 'off', 'on', 'y', 't', '2', 'truee', 'yes please', '""'])('%j is off', (v) => {
    expect(isTruthyFlag(v)).toBe(false);
  });
});

describe('parseEnvLines', () => {
  it('reads NAME=value lines', () => {
    const vars = parseEnvLines('IMAGE_TAG=0.6.1\nENGRAMIA_MAINTENANCE=true\n');
    expect([...vars]).toEqual([
      ['IMAGE_TAG', '0.6.1'],
      ['ENGRAMIA_MAINTENANCE', 'true'],
    ]);
  });

  it('the last assignment wins', () => {
    expect(parseEnvLines('IMAGE_TAG=0.6.0\nIMAGE_TAG=0.6.1').get('IMAGE_TAG')).toBe('0.6.1');
  });

  it('skips comments, blank lines and lines without a name', () => {
    const vars = parseEnvLines('# pinned by deploy\n\n   \n=orphan\nnot an assignment\nA=1');
    expect([...vars]).toEqual([['A', '1']]);
  });

  it('strips matching quotes and surrounding whitespace', () => {
    const vars = parseEnvLines(`A="0.6.1"\nB='x y'\n  C = 3  \nD="unbalanced'\nE=""`);
    expect(vars.get('A')).toBe('0.6.1');
    expect(vars.get('B')).toBe('x y');
    expect(vars.get('C')).toBe('3');
    expect(vars.get('D')).toBe(`"unbalanced'`);
    expect(vars.get('E')).toBe('');
  });

  it('keeps "=" inside values', () => {
    expect(parseEnvLines('URL=postgres://u:p@h/d?a=b').get('URL')).toBe('postgres://u:p@h/d?a=b');
  });

  it('reads CRLF files', () => {
    expect(parseEnvLines('IMAGE_TAG=0.6.1\r\nENGRAMIA_MAINTENANCE=1\r\n').get('IMAGE_TAG')).toBe('0.6.1');
  });

  it('accepts an `export` prefix', () => {
    expect(parseEnvLines('export IMAGE_TAG=0.6.1').get('IMAGE_TAG')).toBe('0.6.1');
  });

  it('drops an inline comment after an unquoted value, as docker compose does', () => {
    // Compose's .env syntax: "Inline comments for unquoted values must be preceded with a space."
    const vars = parseEnvLines('IMAGE_TAG=0.6.1 # pinned by chatops\nENGRAMIA_MAINTENANCE=true   # until 12:00');
    expect(vars.get('IMAGE_TAG')).toBe('0.6.1');
    expect(vars.get('ENGRAMIA_MAINTENANCE')).toBe('true');
    expect(isTruthyFlag(vars.get('ENGRAMIA_MAINTENANCE'))).toBe(true);
  });

  it('keeps a # that is part of an unquoted value (no space before it) or inside quotes', () => {
    const vars = parseEnvLines('A=abc#def\nB="x # y"');
    expect(vars.get('A')).toBe('abc#def');
    expect(vars.get('B')).toBe('x # y');
  });

  it('empty input is an empty map', () => {
    expect(parseEnvLines('').size).toBe(0);
  });
});

describe('compose()', () => {
  it('runs in deployPath with the configured compose file', () => {
    const cmd = compose(envConfig(), ['ps', '-a', '--format', 'json']);
    expect(cmd).toEqual({ cwd: '/opt/engramia', argv: ['docker', 'compose', '-f', 'docker-compose.prod.yml', 'ps', '-a', '--format', 'json'] });
    expect(renderCommand(cmd)).toBe('cd /opt/engramia && docker compose -f docker-compose.prod.yml ps -a --format json');
  });

  it('passes the tag in the configured variable, for this command only', () => {
    const cmd = compose(envConfig(), ['up', '-d', 'engramia-api'], { tag: '0.6.1' });
    expect(cmd.env).toEqual({ IMAGE_TAG: '0.6.1' });
    expect(renderCommand(cmd)).toBe('cd /opt/engramia && IMAGE_TAG=0.6.1 docker compose -f docker-compose.prod.yml up -d engramia-api');
  });

  it('uses CORE_TAG for newer compose files', () => {
    const env = envConfig({ name: 'staging', tagVariable: 'CORE_TAG', deployPath: '/srv/engramia-staging', composeFile: 'docker-compose.yml' });
    expect(renderCommand(compose(env, ['pull', 'engramia-api'], { tag: '0.7.0-rc.1' }))).toBe(
      'cd /srv/engramia-staging && CORE_TAG=0.7.0-rc.1 docker compose -f docker-compose.yml pull engramia-api',
    );
  });

  it('sets no variable when no tag is given', () => {
    expect(compose(envConfig(), ['ps']).env).toBeUndefined();
  });

  it('quotes arguments that need it', () => {
    expect(renderCommand(compose(envConfig(), ['exec', '-T', 'engramia-api', 'sh', '-c', 'alembic current']))).toBe(
      "cd /opt/engramia && docker compose -f docker-compose.prod.yml exec -T engramia-api sh -c 'alembic current'",
    );
  });

  it('inDeployDir runs an arbitrary argv in deployPath', () => {
    expect(renderCommand(inDeployDir(envConfig(), ['grep', '-E', '^(ENGRAMIA_MAINTENANCE|IMAGE_TAG)=', '.env']))).toBe(
      "cd /opt/engramia && grep -E '^(ENGRAMIA_MAINTENANCE|IMAGE_TAG)=' .env",
    );
  });
});
