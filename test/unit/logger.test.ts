// The bot's own JSON log: token shapes in messages and error texts never reach it, and every line stays JSON.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

function capture() {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } });
  return { log, lines };
}

describe('createLogger: scrubbed as written', () => {
  it('removes token shapes from messages and free-text fields, wherever they sit', () => {
    const { log, lines } = capture();
    const tokens = ['ghp_1234567890abcdefghijABCDEFGHIJ123456', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKl', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'sk_live_51HxYzAbCdEfGhIjKlMnOp'];
    log.warn({ err: `docker login failed: ${tokens[0]} rejected`, detail: { output: `using ${tokens[1]}` } }, `webhook ${tokens[2]} / ${tokens[3]}`);
    log.info({ url: 'postgresql://engramia:p@ss@pgvector:5432/engramia' }, 'connecting');
    const text = lines.join('');
    for (const t of tokens) expect(text).not.toContain(t);
    expect(text).not.toContain('p@ss');
    const [warn, info] = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(warn!.err).toBe('docker login failed: [redacted] rejected');
    expect(warn!.detail.output).toBe('using [redacted]');
    expect(info!.url).toBe('postgresql://engramia:[redacted]@pgvector:5432/engramia');
  });

  it('a private key in a log line, whole or cut off, goes and the line stays valid JSON', () => {
    const { log, lines } = capture();
    log.error({ output: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\ndone' }, 'whole');
    log.error({ output: '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75t', next: 'kept' }, 'cut off');
    const [whole, cut] = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(whole!.output).toBe('[redacted]\ndone');
    expect(cut!.output).toBe('[redacted]');
    expect(cut!.next).toBe('kept');
  });

  it('leaves ordinary lines as they were', () => {
    const { log, lines } = capture();
    log.info({ image: 'ghcr.io/engramia/engramia:0.6.1', hostKey: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s', redis: 'redis://127.0.0.1:6379' }, 'deploy 0.6.1: password authentication disabled');
    const line = JSON.parse(lines[0]!) as Record<string, any>;
    expect(line).toMatchObject({ image: 'ghcr.io/engramia/engramia:0.6.1', hostKey: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s', redis: 'redis://127.0.0.1:6379', msg: 'deploy 0.6.1: password authentication disabled' });
  });
});
