import { readFileSync } from 'node:fs';
import AjvModule from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('manifest.yml', () => {
  const manifest = parse(read('manifest.yml'));

  it('is a valid Slack app manifest', () => {
    const Ajv = AjvModule.default ?? AjvModule;
    const ajv = new (Ajv as unknown as typeof AjvModule.default)({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(read('test/schemas/slack-app-manifest.schema.json')));
    const ok = validate(manifest);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('creates /engramia, interactivity on the same endpoint, and the scopes the bot uses', () => {
    const cmd = manifest.features.slash_commands.find((c: { command: string }) => c.command === '/engramia');
    expect(cmd.url).toMatch(/\/slack\/events$/);
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.settings.interactivity.request_url).toBe(cmd.url);
    expect(manifest.oauth_config.scopes.bot).toEqual(expect.arrayContaining(['commands', 'chat:write']));
  });
});

describe('chatops.example.yml', () => {
  it('is valid config as shipped', () => {
    const config = parseConfig(read('chatops.example.yml'), 'chatops.example.yml');
    expect(config.defaultEnv).toBe('production');
    expect(config.environments.production?.ssh.hostKeySha256).toMatch(/^SHA256:/);
  });
});
