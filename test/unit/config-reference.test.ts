// The config reference in docs/setup.md is what operators set the bot up from; this keeps it from drifting
// away from the zod schema the bot actually enforces: the same keys, the same required ones, the
// same defaults.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';

const SETUP = readFileSync(fileURLToPath(new URL('../../docs/setup.md', import.meta.url)), 'utf8');

interface Row {
  key: string;
  defaultCell: string;
}

/** The table under "## Config reference", keys written as `….x` meaning `environments.NAME.x`. */
function readmeRows(): Row[] {
  const section = SETUP.slice(SETUP.indexOf('## Config reference'));
  const table = section.slice(section.indexOf('| key |'), section.indexOf('\n\n', section.indexOf('| key |')));
  return table
    .split('\n')
    .slice(2)
    .map((line) => line.split('|').map((c) => c.trim()))
    .map((cells) => {
      const key = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
      if (!key) throw new Error(`config reference row without a single \`key\`: ${cells.join('|')}`);
      return { key: key.replace(/^…\./, 'environments.NAME.'), defaultCell: cells[3] ?? '' };
    });
}

interface SchemaKey {
  key: string;
  required: boolean;
  default?: unknown;
}

type Json = { type?: string; properties?: Record<string, Json>; required?: string[]; additionalProperties?: Json | boolean; default?: unknown };

/** Every leaf key of the schema (objects are walked into; a record's values appear under NAME). */
function schemaKeys(): SchemaKey[] {
  const out: SchemaKey[] = [];
  const walk = (node: Json, path: string, required: boolean) => {
    if (node.properties) {
      for (const [k, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${k}` : k, (node.required ?? []).includes(k));
      return;
    }
    if (node.type === 'object' && node.additionalProperties && typeof node.additionalProperties === 'object') {
      out.push({ key: `${path}.NAME`, required });
      walk(node.additionalProperties, `${path}.NAME`, required);
      return;
    }
    out.push({ key: path, required, ...(node.default !== undefined ? { default: node.default } : {}) });
  };
  walk(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json, '', true);
  // The record entry itself is documented as `environments.NAME`; its object has no default of its own.
  return out;
}

describe('docs/setup.md config reference vs the zod schema', () => {
  const rows = readmeRows();
  const keys = schemaKeys();

  it('lists exactly the keys the schema accepts', () => {
    expect(rows.map((r) => r.key).sort()).toEqual(keys.map((k) => k.key).sort());
  });

  it('marks required keys "required", and shows every default as the schema sets it', () => {
    for (const k of keys) {
      const row = rows.find((r) => r.key === k.key);
      if (!row) continue;
      if (k.required && k.default === undefined) {
        expect(row.defaultCell, k.key).toMatch(/required/);
        continue;
      }
      expect(row.defaultCell, k.key).not.toMatch(/required/);
      if (k.default !== undefined) {
        const shown = Array.isArray(k.default) ? JSON.stringify(k.default) : String(k.default);
        expect(row.defaultCell, k.key).toContain(`\`${shown}\``);
      }
    }
  });

  it('reads the table it claims to (the walk and the parser see the known keys)', () => {
    for (const key of ['environments.NAME.ssh.hostKeySha256', 'environments.NAME.timeouts.pull', 'access.admins']) {
      expect(rows.map((r) => r.key)).toContain(key);
      expect(keys.map((k) => k.key)).toContain(key);
    }
    expect(keys.find((k) => k.key === 'environments.NAME.gateTimeoutSeconds')?.default).toBe(900);
    expect(keys.find((k) => k.key === 'environments.NAME.ssh.host')?.required).toBe(true);
  });
});
