// The shipped deployment files: docker-compose.yml and its env examples give each role only the
// secrets it uses (the app: Slack; the workers: the hosts), and keep the admin listener unpublished.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { parseEnvLines } from '../../src/engramia/compose.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8')) as { services: Record<string, Record<string, any>> };
const envExample = (p: string) => new Set(parseEnvLines(readFileSync(root(p), 'utf8')).keys());
/** Commented-out lines count: `# SLACK_APP_TOKEN=…` shows an operator where that value would go. */
const envMentions = (p: string) => new Set([...readFileSync(root(p), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
const config = parseConfig(readFileSync(root('chatops.example.yml'), 'utf8'), 'chatops.example.yml');
const HOST_SECRETS = Object.values(config.environments).flatMap((e) => [e.apiKeyEnv, e.registry.tokenEnv]);
const SLACK_RECEIVING = ['SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN'];
const { app, worker } = compose.services as { app: Record<string, any>; worker: Record<string, any> };
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

describe('docker-compose.yml: each role gets only its secrets', () => {
  it('app reads app.env, worker reads worker.env, and neither reads a shared .env', () => {
    expect(list(app.env_file)).toEqual(['app.env']);
    expect(list(worker.env_file)).toEqual(['worker.env']);
  });

  it('app.env.example holds the Slack secrets and none of the host secrets chatops.example.yml names', () => {
    expect(HOST_SECRETS.length).toBeGreaterThan(0);
    const keys = envMentions('app.env.example');
    for (const name of ['SLACK_BOT_TOKEN', ...SLACK_RECEIVING]) expect(keys).toContain(name);
    for (const name of HOST_SECRETS) expect(keys).not.toContain(name);
  });

  it('worker.env.example holds every host secret and the bot token, but nothing that receives from Slack', () => {
    const keys = envMentions('worker.env.example');
    for (const name of [...HOST_SECRETS, 'SLACK_BOT_TOKEN']) expect(keys).toContain(name);
    for (const name of SLACK_RECEIVING) expect(keys).not.toContain(name);
    expect(envExample('worker.env.example')).toContain('SLACK_BOT_TOKEN');
  });

  it('no secret is written into the compose file itself', () => {
    for (const svc of [app, worker]) {
      for (const name of Object.keys(svc.environment ?? {})) expect([...HOST_SECRETS, 'SLACK_BOT_TOKEN', ...SLACK_RECEIVING]).not.toContain(name);
    }
  });

  it('only workers mount the deploy key, at the path chatops.example.yml names', () => {
    const keyPaths = Object.values(config.environments).map((e) => e.ssh.privateKeyPath);
    const mounts = (svc: Record<string, any>) => list(svc.volumes).map((v) => v.split(':')[1]);
    for (const p of keyPaths) {
      expect(mounts(worker)).toContain(p);
      expect(mounts(app)).not.toContain(p);
    }
  });
});

describe('docker-compose.yml: exposure', () => {
  const published = (svc: Record<string, any>) => list(svc.ports).map((p) => p.split(':').at(-1)!.split('/')[0]);

  it('publishes the app\'s PORT and nothing else; workers publish nothing', () => {
    expect(published(app)).toEqual(['3000']);
    expect(published(worker)).toEqual([]);
  });

  it('the admin listener (9464) is reachable on the compose network only, never published on the host', () => {
    for (const svc of [app, worker]) {
      expect(list(svc.expose)).toContain('9464');
      expect(published(svc)).not.toContain('9464');
      expect(svc.environment?.ADMIN_PORT ?? '9464').toBe('9464');
    }
  });
});
