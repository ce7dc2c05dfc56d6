/**
 * Removes secrets from text that came from a host (command output, error bodies)
 * before it reaches Slack or a log. Known values are replaced exactly; token
 * shapes are caught by pattern even when the bot never knew the value.
 */
const PATTERNS: Array<[RegExp, string]> = [
  [/\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}/g, '[redacted]'],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, '[redacted]'],
  [/\bengramia_sk_[A-Za-z0-9_-]{16,}/g, '[redacted]'],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/g, '[redacted]'],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, '[redacted]'],
  [/\bxox[abposr]-[A-Za-z0-9-]{8,}/g, '[redacted]'],
  [/\bxapp-[A-Za-z0-9-]{8,}/g, '[redacted]'],
  [/\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1[redacted]'],
  [/(postgres(?:ql)?(?:\+\w+)?:\/\/[^:\s/@]+:)[^@\s]+@/gi, '$1[redacted]@'],
];

export function scrub(text: string, knownSecrets: readonly string[] = []): string {
  let out = text;
  for (const secret of knownSecrets) {
    // Very short values would blank out ordinary words; they are not worth the damage.
    if (secret.length < 6) continue;
    out = out.split(secret).join('[redacted]');
    // Rendered Slack payloads hold the mrkdwn-escaped form of any value.
    const escaped = secret.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    if (escaped !== secret) out = out.split(escaped).join('[redacted]');
  }
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

/**
 * Application logs print configuration and requests the bot never saw, so beyond the known
 * values and token shapes, whatever a log line assigns to a secret-sounding name is removed
 * (`api_key=…`, `"password": "…"`, `Authorization: Basic …`), as are JWTs. Only logs get this
 * wider net: it would also blank harmless values like `token_count=3`, a fair price there.
 */
const LOG_PATTERNS: Array<[RegExp, string]> = [
  [/\b([A-Za-z0-9_.-]*(?:key|token|secret|passw(?:or)?d|pwd|credentials?|auth(?:orization)?|cookie|signature)s?)("?\s*[:=]\s*"?)(?!\[redacted\])(?:(?:Bearer|Basic|Token)\s+)?[^\s"'&,;}]+/gi, '$1$2[redacted]'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, '[redacted]'],
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:\s/@]*:)[^@\s/]+@/gi, '$1[redacted]@'],
];

export function scrubLog(text: string, knownSecrets: readonly string[] = []): string {
  let out = scrub(text, knownSecrets);
  for (const [re, replacement] of LOG_PATTERNS) out = out.replace(re, replacement);
  return out;
}
