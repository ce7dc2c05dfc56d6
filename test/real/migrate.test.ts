// Issue 14, item 4: `migrations` and `migrate downgrade REV` through the bot against real alembic
// (its `current`, `history` and `heads` output, `(head)` markers, INFO lines on stderr) and a real
// PostgreSQL; checked afterwards with the real alembic and the real database.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { OPS_CHANNEL } from '../world/config.js';
import { startRealBotWorld, type RealBotWorld } from './bot-world.js';
import { approvePlan, confirmDowngrade, exists, finalCard, must, psRows, text, tearDownAfterFile, listOnlySnapshot } from './bot-steps.js';
import { API_SERVICE, createDeployFolder, type DeployFolder } from './deploy-host.js';
import { bringUp, connectVm, type Vm } from './vm.js';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;
let w: RealBotWorld | undefined;

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.2', name: 'engramia-migrate' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.2');
  w = await startRealBotWorld(host, deploy, { verifySettleSeconds: 30 });
}, 600_000);
tearDownAfterFile(() => ({ w, vm }), 60);

const alembic = (...args: string[]) => must(`alembic ${args.join(' ')}`, vm.compose(['exec', '-T', API_SERVICE, 'alembic', ...args]));

/** The real `alembic history` lines ("031 -> 032, create pattern_feedback") as revision → description. */
async function realHistory(): Promise<Map<string, string>> {
  const lines = (await alembic('history')).trim().split('\n');
  return new Map(lines.map((l) => /^\S+ -> (\d+)(?: \(head\))?, (.*)$/.exec(l)!).map((m) => [m[1]!, m[2]!]));
}

/** The bot's answer to `migrations`: a fresh message after `after` that names the database migrations. */
async function migrationsAnswer(after: number): Promise<string> {
  expect((await w!.slash('migrations')).status).toBe(200);
  const m = await w!.slack.waitFor(() => w!.slack.messagesIn(OPS_CHANNEL).slice(after).find((x) => text(x.blocks).includes('database migrations') && /Current/.test(text(x.blocks))), { timeoutMs: 60_000, description: 'the migrations answer' });
  return text(m.blocks);
}

describe('migrations and migrate downgrade through the bot against the real host', () => {
  it('migrations says what the real alembic says: current, head, the applied revisions with their descriptions', async () => {
    const current = (await alembic('current')).trim();
    const heads = (await alembic('heads')).trim();
    expect(current).toBe(heads); // both "033 (head)" on 0.6.2 after bringUp
    const said = await migrationsAnswer(0);
    const rev = current.replace(/ \(head\)$/, '');
    expect(said).toContain(`*Current*\\n\`${rev}\``);
    expect(said).toContain(`*Head (0.6.2)*\\n\`${rev}\``);
    expect(said).toContain('at head');
    for (const [r, description] of await realHistory()) expect(said).toContain(`• \`${r}\` ${description}`);
    expect(said).not.toContain('(head)'); // alembic's marker is parsed, not echoed
  });

  it('migrate downgrade 031 on 0.6.2: four-eyes, snapshot, confirmed in a modal, the real database at 031 without 032/033\'s table and column', async () => {
    expect(await exists(vm, 'pattern_feedback')).toBe(true);
    expect(await exists(vm, 'patterns', 'embedding_model')).toBe(true);
    const start = w!.slack.messagesIn(OPS_CHANNEL).length;

    expect((await w!.slash('migrate downgrade 031')).status).toBe(200);
    await approvePlan(w!);
    const { gate, modal } = await confirmDowngrade(w!);
    expect(text(gate.blocks)).toContain('033 → 031');
    expect(text(modal.view.blocks)).toContain('Downgrade the production database 033 → 031?');
    const card = await finalCard(w!, 'Downgrade the production database', /succeeded|failed|stopped/);
    expect(text(card.blocks), text(card.blocks)).toContain('succeeded');

    // The snapshot taken before it, which the real pg_restore lists with 033's column in it.
    const { listing } = await listOnlySnapshot(vm);
    expect(listing).toContain('TABLE public pattern_feedback');
    expect(listing).toContain('INDEX public ix_patterns_embedding_model');

    // The real database: alembic at 031, 032's table and 033's column and index gone, 031's column kept.
    expect((await alembic('current')).trim()).toBe('031');
    expect(await exists(vm, 'pattern_feedback')).toBe(false);
    expect(await exists(vm, 'patterns', 'embedding_model')).toBe(false);
    expect(await exists(vm, 'patterns', 'quality_score')).toBe(true);

    // Maintenance is back off (it was off before), and 0.6.2 still runs.
    const env = await must('cat .env', vm.exec({ argv: ['cat', '.env'] }));
    expect(env).not.toMatch(/^ENGRAMIA_MAINTENANCE=/m);
    expect((await psRows(vm)).find((r) => r.Service === API_SERVICE)).toMatchObject({ State: 'running', Image: `${host.apiRepository}:0.6.2` });

    // migrations now shows the database two behind 0.6.2's head, the two revisions the real history names.
    const said = await migrationsAnswer(start);
    const history = await realHistory();
    expect(said).toContain('*Current*\\n`031`');
    expect(said).toContain('2 behind head');
    expect(said).toContain(`• \`032\` ${history.get('032')}`);
    expect(said).toContain(`• \`033\` ${history.get('033')}`);
  });
});
