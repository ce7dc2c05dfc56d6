// Unit tests for src/security/scrub.ts: secrets in host output never reach Slack or a log.
import { describe, expect, it } from 'vitest';
import { esc } from '../../src/render/model.js';
import { scrub, scrubLog } from '../../src/security/scrub.js';

const R = '[redacted]';

describe('known secrets', () => {
  it('replaces every occurrence of a known value exactly', () => {
    const key = 'eng-prod-key-1234567890';
    expect(scrub(`key=${key} again ${key}.`, [key])).toBe(`key=${R} again ${R}.`);
  });

  it('replaces several known values, including multi-line ones', () => {
    const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
    const out = scrub(`read ${pem} and token ghcr-token-value-xyz`, [pem, 'ghcr-token-value-xyz']);
    expect(out).toBe(`read ${R} and token ${R}`);
  });

  it('treats regular-expression characters in a secret literally', () => {
    const secret = 'a.b*c+d?(e)[f]$^|\\';
    expect(scrub(`x ${secret} y aXbbbbc`, [secret])).toBe(`x ${R} y aXbbbbc`);
  });

  it('leaves values shorter than 6 characters alone (they would blank ordinary words)', () => {
    expect(scrub('the cat sat', ['cat'])).toBe('the cat sat');
    expect(scrub('abcdef', ['abcdef'])).toBe(R);
  });

  it('ignores an empty list and empty strings', () => {
    expect(scrub('nothing here', [])).toBe('nothing here');
    expect(scrub('nothing here', [''])).toBe('nothing here');
  });

  it('finds a known secret after Slack mrkdwn escaping (the outbox scrubs rendered payloads)', () => {
    // The outbox runs scrub over the rendered blocks, where host text has already passed
    // through esc(); a secret with &, < or > in it is then only present in escaped form.
    const secret = 'p&ss<w>rd-123456';
    const rendered = esc(`DATABASE_PASSWORD=${secret}`);
    const out = scrub(rendered, [secret]);
    expect(out).not.toContain(esc(secret));
    expect(out).not.toContain('p&amp;ss');
  });
});

describe('token shapes caught without knowing the value', () => {
  it.each([
    ['Stripe live secret key', 'sk_live_51HxYzAbCdEfGhIjKlMnOp'],
    ['Stripe test secret key', 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'],
    ['Stripe restricted key', 'rk_live_51HxYzAbCdEfGhIj'],
    ['OpenAI key', 'sk-proj-abcdefghijklmnopqrstuvwx'],
    ['GitHub personal token', 'ghp_1234567890abcdefghijABCDEFGHIJ123456'],
    ['GitHub OAuth token', 'gho_1234567890abcdefghijABCDEFGHIJ'],
    ['GitHub server token', 'ghs_1234567890abcdefghijABCDEFGHIJ'],
    ['GitHub fine-grained token', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnop'],
    ['Slack bot token', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
    ['Slack user token', 'xoxp-123456789012-123456789012-123456789012-abcdef0123456789'],
    ['Slack app token', 'xapp-1-A0123456789-1234567890123-abcdef0123456789'],
  ])('%s', (_label, token) => {
    const out = scrub(`value: ${token} end`);
    expect(out).toBe(`value: ${R} end`);
  });

  it('catches tokens wherever they sit: quoted, after =, in JSON, at the start and end', () => {
    const t = 'sk_live_51HxYzAbCdEfGhIjKlMnOp';
    expect(scrub(`STRIPE_SECRET_KEY=${t}`)).toBe(`STRIPE_SECRET_KEY=${R}`);
    expect(scrub(`{"key":"${t}"}`)).toBe(`{"key":"${R}"}`);
    expect(scrub(t)).toBe(R);
    expect(scrub(`'${t}'\n`)).toBe(`'${R}'\n`);
  });

  it('catches every token on a multi-line log', () => {
    const log = [
      'INFO starting',
      'DEBUG stripe key sk_test_4eC39HqLyjWDarjtT1zdp7dc',
      'DEBUG slack xoxb-1234-5678-abcdefghijkl',
      'DEBUG gh ghp_1234567890abcdefghijABCDEFGHIJ123456',
      'INFO done',
    ].join('\n');
    const out = scrub(log);
    expect(out.split('\n')).toEqual(['INFO starting', `DEBUG stripe key ${R}`, `DEBUG slack ${R}`, `DEBUG gh ${R}`, 'INFO done']);
  });

  it('keeps the word Bearer and removes the credential', () => {
    expect(scrub('Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-def_ghi')).toBe(`Authorization: Bearer ${R}`);
    expect(scrub('authorization: bearer abcdefgh12345678')).toBe(`authorization: bearer ${R}`);
    expect(scrub('Bearer  engramia_sk_abcdefghijklmnop')).toBe(`Bearer  ${R}`);
  });

  it.each([
    ['postgres://engramia:s3cr3t-pw@pgvector:5432/engramia', `postgres://engramia:${R}@pgvector:5432/engramia`],
    ['postgresql://engramia:s3cr3t@localhost/engramia?sslmode=require', `postgresql://engramia:${R}@localhost/engramia?sslmode=require`],
    ['POSTGRESQL://admin:P%40ss:word@db.internal:5432/x', `POSTGRESQL://admin:${R}@db.internal:5432/x`],
    ['DATABASE_URL=postgresql://u:p@h/d', `DATABASE_URL=postgresql://u:${R}@h/d`],
  ])('removes the password of %s', (url, want) => {
    expect(scrub(url)).toBe(want);
  });

  it('removes the password of a SQLAlchemy driver URL (postgresql+psycopg://)', () => {
    const out = scrub('ENGRAMIA_DATABASE_URL=postgresql+psycopg://engramia:s3cr3t-pw@pgvector:5432/engramia');
    expect(out).not.toContain('s3cr3t-pw');
    expect(out).toContain('pgvector:5432/engramia');
  });

  it("removes Engramia's own API keys (engramia_sk_…), which `logs` output may carry", () => {
    // Key format from Engramia's changelog: `engramia_sk_<43 base64url>`.
    const key = 'engramia_sk_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5';
    expect(scrub(`created key ${key} for tenant 7`)).not.toContain(key);
  });

  it('leaves a postgres URL without a password alone', () => {
    expect(scrub('postgresql://engramia@pgvector:5432/engramia')).toBe('postgresql://engramia@pgvector:5432/engramia');
    expect(scrub('postgresql://pgvector:5432/engramia')).toBe('postgresql://pgvector:5432/engramia');
  });
});

describe('ordinary text is untouched', () => {
  it.each([
    'engramia-api  | INFO:     172.18.0.4:51234 - "GET /v1/health HTTP/1.1" 200 OK',
    'Container engramia-api  Started',
    'alembic.runtime.migration: Running upgrade 031 -> 032, add tenants',
    '032 (head)',
    'The task_test_runner finished; risk_live_feed is fine.',
    'sk_live_ (prefix only)',
    'ghp_short',
    'xoxb-short',
    'Bearer token missing',
    'desk-lamp ask-me-anything',
    'https://api.engramia.dev/v1/health/deep',
    'redis://127.0.0.1:6379',
    'image ghcr.io/engramia/engramia:0.6.1@sha256:0123456789abcdef',
    'üñíçødé — text 😀',
    '',
  ])('%j', (text) => {
    expect(scrub(text)).toBe(text);
    expect(scrub(text, ['not-in-the-text-123'])).toBe(text);
  });

  it('is idempotent', () => {
    const once = scrub('Bearer abcdefgh12345678 and sk_live_51HxYzAbCdEf', ['abcdefgh12345678']);
    expect(scrub(once, ['abcdefgh12345678'])).toBe(once);
  });

  it('handles a large input quickly', () => {
    const big = `${'ordinary log line with words and numbers 12345\n'.repeat(20_000)}sk_live_51HxYzAbCdEfGhIj`;
    const started = Date.now();
    const out = scrub(big, ['some-known-secret']);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(out.endsWith(R)).toBe(true);
    expect(out.length).toBe(big.length - 'sk_live_51HxYzAbCdEfGhIj'.length + R.length);
  });
});

describe('scrubLog: the wider net for application logs', () => {
  it.each([
    ['key=value', 'api_key=abc123def', 'api_key=[redacted]'],
    ['env style', 'ENGRAMIA_API_KEYS=engk_0123456789abcdef', 'ENGRAMIA_API_KEYS=[redacted]'],
    ['JSON field', '{"level":"info","password": "hunter2", "user":"x"}', '{"level":"info","password": "[redacted]", "user":"x"}'],
    ['query string', 'GET /v1/recall?token=abcdef123&x=1', 'GET /v1/recall?token=[redacted]&x=1'],
    ['Authorization header', 'Authorization: Basic dXNlcjpwYXNz', 'Authorization: [redacted]'],
    ['bearer token', 'authorization: Bearer abcdefgh12345678', 'authorization: [redacted]'],
    ['JWT', 'session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl end', 'session [redacted] end'],
    ['URL credentials, no user', 'redis://:pw@r:6379/0', 'redis://:[redacted]@r:6379/0'],
    ['a port is not a password', 'listening on http://0.0.0.0:8000/v1', 'listening on http://0.0.0.0:8000/v1'],
    ['https credentials', 'fetching https://bot:s3cr3t@ghcr.io/v2/', 'fetching https://bot:[redacted]@ghcr.io/v2/'],
  ])('%s', (_what, input, expected) => {
    expect(scrubLog(input)).toBe(expected);
  });

  it('still removes known values and token shapes', () => {
    expect(scrubLog('started with sk_live_abcdefghijklmnop and my-known-secret-1', ['my-known-secret-1'])).toBe('started with [redacted] and [redacted]');
  });

  it('leaves ordinary log lines alone', () => {
    const line = 'INFO:     172.18.0.4:51234 - "GET /v1/health HTTP/1.1" 200 OK; ENGRAMIA_AUTH_MODE=env';
    expect(scrubLog(line)).toBe(line);
  });
});

describe('scrubLog: secrets that must go, text that must stay (table)', () => {
  const PEM = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5\n-----END OPENSSH PRIVATE KEY-----';
  const FP = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';

  // [what, input, what must come out]
  const mustGo: Array<[string, string, string]> = [
    ['key=value, unquoted', 'password=hunter2 user=bob', `password=${R} user=bob`],
    ['key=value, single quotes', "password='hunter2'", `password='${R}'`],
    ['key=value, double quotes with a space inside', 'password="hunter 2" next', `password="${R}" next`],
    ['env style, single quotes, one character', "DB_PASSWORD='x'", `DB_PASSWORD='${R}'`],
    ['env style, export', 'export GHCR_TOKEN=ghcr-0123456789', `export GHCR_TOKEN=${R}`],
    ['key: value (YAML)', 'api_key: abc123def456', `api_key: ${R}`],
    ['Key : value, spaced', 'Secret : s3cr3t-value', `Secret : ${R}`],
    ['JSON', '{"level":"info","password": "hunter2", "user":"x"}', `{"level":"info","password": "${R}", "user":"x"}`],
    ['JSON, no spaces', '{"db_password":"x","port":5432}', `{"db_password":"${R}","port":5432}`],
    ['JSON with an escaped quote in the value', '{"password":"a\\"b c"}', `{"password":"${R}"}`],
    ['Python dict', "{'db_password': 'x', 'host': 'pgvector'}", `{'db_password': '${R}', 'host': 'pgvector'}`],
    ['JSON-escaped inside a JSON string', '{"msg": "settings {\\"api_key\\": \\"x\\", \\"region\\": \\"eu\\"}"}', `{"msg": "settings {\\"api_key\\": \\"${R}\\", \\"region\\": \\"eu\\"}"}`],
    ['query string', 'GET /v1/recall?token=abcdef123&x=1', `GET /v1/recall?token=${R}&x=1`],
    ['inside parentheses: the value goes, the ")" stays', '(storage=postgres, password=hunter2)', `(storage=postgres, password=${R})`],
    ['Authorization: Basic', 'Authorization: Basic dXNlcjpwYXNz', `Authorization: ${R}`],
    ['Bearer token in prose', 'calling with Bearer engk_abcdefgh12345678 now', `calling with Bearer ${R} now`],
    ['Slack bot token', 'token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp', `token ${R}`],
    ['Slack app token', 'connecting with xapp-1-A0123456789-1234567890123-abcdef', `connecting with ${R}`],
    ['Stripe live key', 'stripe key sk_live_51HxYzAbCdEfGhIjKlMnOp loaded', `stripe key ${R} loaded`],
    ['Stripe restricted key', 'using rk_live_51HxYzAbCdEfGhIj', `using ${R}`],
    ['Stripe webhook secret', 'webhook whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ok', `webhook ${R} ok`],
    ['GitHub classic token', 'gh auth ghp_1234567890abcdefghijABCDEFGHIJ123456', `gh auth ${R}`],
    ['GitHub fine-grained token', 'pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop', `pat ${R}`],
    ['URL credentials', 'fetching https://bot:s3cr3t@ghcr.io/v2/', `fetching https://bot:${R}@ghcr.io/v2/`],
    ['URL credentials with "@" in the password', 'DATABASE_URL=postgresql://engramia:p@ss@w0rd@pgvector:5432/engramia', `DATABASE_URL=postgresql://engramia:${R}@pgvector:5432/engramia`],
    ['URL credentials, no user', 'redis://:pw@r:6379/0', `redis://:${R}@r:6379/0`],
    ['PEM private key block', `key follows\n${PEM}\nafter`, `key follows\n${R}\nafter`],
    ['PEM block, JSON-escaped newlines', `{"msg":"${PEM.replace(/\n/g, '\\n')}"}`, `{"msg":"${R}"}`],
    ['PEM block cut off by the log tail', '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75t', R],
    ['AWS access key id', 'aws AKIAIOSFODNN7EXAMPLE in use', `aws ${R} in use`],
    ['AWS secret access key by name', 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', `aws_secret_access_key = ${R}`],
    ['JWT', 'session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl end', `session ${R} end`],
    ['cookie header', 'Cookie: session=abc123def', `Cookie: ${R}`],
  ];

  const mustStay: Array<[string, string]> = [
    ['an auth mode, with its ")"', '{"level": "INFO", "message": "Engramia 0.6.1 starting (storage=postgres, auth=env)"}'],
    ['auth mode at the end', 'auth=env'],
    ['a version string', 'engramia-api 0.6.1 (python 3.12.3), version=0.6.1'],
    ['a SHA256 host key fingerprint', `ED25519 key fingerprint is ${FP}.`],
    ['a fingerprint after "host key:"', `host key: ${FP}`],
    ['the config key that pins it', `hostKeySha256: "${FP}"`],
    ['alembic revisions', 'INFO  [alembic.runtime.migration] Running upgrade 031 -> 032, add tenants'],
    ['an alembic hash revision', 'Rev: ae1027a6acf (head)'],
    ['a docker image ref', 'Pulling ghcr.io/engramia/engramia:0.6.1'],
    ['an image ref with a digest', 'image ghcr.io/engramia/engramia:0.6.1@sha256:0123456789abcdef0123456789abcdef'],
    ['prose with the word password', 'sshd: password authentication disabled'],
    ['prose: token counts', 'used token_count=512 for the prompt'],
    ['a path', 'reading /run/secrets/deploy_key and /opt/engramia/.env'],
    ['the key path in config', 'privateKeyPath: /run/secrets/deploy_key'],
    ['a variable reference, not its value', 'docker login ghcr.io -u engramia-bot --password-stdin <<< $GHCR_TOKEN; token=$GHCR_TOKEN'],
    ['a public key block', '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----'],
    ['a port is not a password', 'listening on http://0.0.0.0:8000/v1'],
    ['a URL with a user and no password', 'postgresql://engramia@pgvector:5432/engramia'],
    ['an HTTP access log line', 'INFO:     172.18.0.4:51234 - "GET /v1/health HTTP/1.1" 200 OK'],
    ['an empty or null secret setting', '{"api_key": null, "password": ""}'],
    ['Stripe prefix only', 'STRIPE_SECRET_KEY prefix sk_live_ is set'],
  ];

  it.each([
    ['dotted words', 'a.'.repeat(50_000)],
    ['one long word', 'a'.repeat(100_000)],
    ['secret names without values', 'key'.repeat(30_000)],
    ['unclosed quotes', `password="${'x'.repeat(50_000)}`],
  ])('stays linear on a long line of %s (a log line is not trusted input)', (_what, line) => {
    const started = Date.now();
    scrubLog(line);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('has at least 30 vectors', () => {
    expect(mustGo.length + mustStay.length).toBeGreaterThanOrEqual(30);
  });

  it.each(mustGo)('removes: %s', (_what, input, expected) => {
    expect(scrubLog(input)).toBe(expected);
    // Idempotent: a scrubbed line scrubbed again is unchanged.
    expect(scrubLog(expected)).toBe(expected);
  });

  it.each(mustStay)('keeps: %s', (_what, input) => {
    expect(scrubLog(input)).toBe(input);
    expect(scrub(input)).toBe(input);
  });

  it.each([
    ['Stripe webhook secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
    ['AWS access key id', 'AKIAIOSFODNN7EXAMPLE'],
    ['PEM private key', PEM],
  ])('Slack-bound output (scrub) removes a %s too', (_what, secret) => {
    expect(scrub(`x ${secret} y`)).toBe(`x ${R} y`);
  });

  it('Slack-bound output (scrub) removes a URL password with "@" in it, whatever the scheme', () => {
    expect(scrub('postgresql://u:p@ss@w0rd@h/d')).toBe(`postgresql://u:${R}@h/d`);
    expect(scrub('amqp://guest:g@st@rabbit:5672/')).toBe(`amqp://guest:${R}@rabbit:5672/`);
  });
});
