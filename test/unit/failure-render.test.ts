import { describe, expect, it } from 'vitest';
import { closedGateMsg, hostNowLine, maintenanceField, maintenanceLines, stoppedLine } from '../../src/render/failure.js';

const facts = { kind: 'deploy', env: { tagVariable: 'IMAGE_TAG', composeFile: 'docker-compose.prod.yml' }, fromVersion: '0.6.0', maintenanceOnByUs: true };

describe('what a stopped job says (src/render/failure.ts)', () => {
  it('maintenance left on by the job: says so, why, and the exact commands that end it on the running tag', () => {
    const [line] = maintenanceLines(facts, true, true, '0.6.1');
    expect(line).toContain('*Maintenance is still ON* (this deploy turned it on)');
    // mrkdwn-escaped, as Slack needs it: && is &amp;&amp;.
    expect(line).toContain("`sed -i '/ENGRAMIA_MAINTENANCE/d' .env &amp;&amp; IMAGE_TAG=0.6.1 docker compose -f docker-compose.prod.yml up -d engramia-api`");
    expect(maintenanceLines(facts, true, undefined, undefined)[0]).toContain('(the API did not answer to confirm it)');
  });

  it('.env and the running container disagree: each direction is named, with its fix; all off says nothing', () => {
    expect(maintenanceLines({ ...facts, maintenanceOnByUs: false }, true, false, '0.6.0')[0]).toContain('*.env asks for maintenance, but the API still serves*');
    expect(maintenanceLines({ ...facts, maintenanceOnByUs: false }, false, true, '0.6.0')[0]).toContain('*The API still answers 503 (maintenance)* though .env no longer asks for it');
    expect(maintenanceLines({ ...facts, maintenanceOnByUs: false }, false, false, '0.6.0')).toEqual([]);
  });

  it('the card field follows what the API answers first, then .env', () => {
    expect(maintenanceField(false, true)).toEqual({ on: true, reason: 'when the job stopped: .env does not ask for it, the API answers 503' });
    expect(maintenanceField(true, undefined)).toEqual({ on: true, reason: 'when the job stopped: .env asks for it, the API did not answer' });
    expect(maintenanceField(undefined, undefined).on).toBe(false);
  });

  it('the first line, the host line and a closed question', () => {
    expect(stoppedLine('cancelled', 'Pull 0.6.1', 'cancelled by U1 before this step')).toBe('🛑 Stopped at *Pull 0.6.1*: cancelled by U1 before this step.');
    expect(hostNowLine({ apiState: 'running', runningTag: '0.6.0', pinnedTag: '0.6.0', maintenanceInEnvFile: false })).toBe('*Host now:* engramia-api runs `0.6.0`; .env pins `0.6.0`; maintenance off in .env.');
    expect(JSON.stringify(closedGateMsg('Turn maintenance on?', 'failed'))).toContain('Closed: the job failed before this was decided.');
  });
});
