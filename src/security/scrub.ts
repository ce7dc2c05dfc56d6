/**
 * Removes secrets from text that came from a host (command output, error bodies)
 * before it reaches Slack or a log. Known values are replaced exactly; token
 * shapes are caught by pattern even when the bot never knew the value.
 */
const R = '[redacted]';

const PATTERNS: Array<[RegExp, string]> = [
  // A whole block, or one cut off mid-key (a log tail may stop inside one): then up to the end of the text,
  // or of the JSON string it sits in (a key's body never holds a `"`), so a JSON log line stays JSON.
  [/-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----[^"]*?(?:-----END \1PRIVATE KEY-----|(?=")|$)/g, R],
  [/\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}/g, R],
  [/\bwhsec_[A-Za-z0-9+/=]{16,}/g, R],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, R],
  [/\bengramia_sk_[A-Za-z0-9_-]{16,}/g, R],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/g, R],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, R],
  [/\bxox[abposre]-[A-Za-z0-9-]{8,}/g, R],
  [/\bxapp-[A-Za-z0-9-]{8,}/g, R],
  // AWS access key ids; their secret halves have no shape of their own and are caught by name in logs.
  [/\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g, R],
  [/\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, `$1${R}`],
  // scheme://user:password@host, up to the last "@" before the path: a raw "@" in a password is common in configs.
  [/\b([a-z][a-z0-9+.-]{0,31}:\/\/[^:\s/@]*:)[^\s/]+@/gi, `$1${R}@`],
];

export function scrub(text: string, knownSecrets: readonly string[] = []): string {
  let out = text;
  for (const secret of knownSecrets) {
    // Very short values would blank out ordinary words; they are not worth the damage.
    if (secret.length < 6) continue;
    out = out.split(secret).join(R);
    // Rendered Slack payloads hold the mrkdwn-escaped form of any value.
    const escaped = secret.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    if (escaped !== secret) out = out.split(escaped).join(R);
  }
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

/**
 * Application logs print configuration and requests the bot never saw, so beyond the known
 * values and token shapes, whatever a log line assigns to a secret-sounding name is removed, in
 * every spelling a log uses: `key=v`, `key: v`, quoted either way, JSON, a Python dict, JSON inside
 * a JSON string (`{\"api_key\": \"v\"}`), `Authorization: Basic v`. Only logs get this wider net.
 */
const SECRET_NAME = String.raw`[A-Za-z0-9_.-]{0,64}?(?:key|token|secret|passw(?:or)?d|passphrase|pwd|credentials?|auth(?:orization)?|cookie|signature)s?`;
/** The name's closing quote (plain or JSON-escaped), then `:` or `=`. */
const ASSIGN = String.raw`(?:\\?["'])?\s*[:=]\s*`;
const BARE_CHAR = String.raw`[^\s"'&,;})\]\\]`;
const VALUE = [
  String.raw`\\"[^"]*?\\"`, // JSON-escaped: \"v\"
  String.raw`"(?:[^"\\\n]|\\.)*"`,
  String.raw`'[^'\n]*'`,
  // Unquoted: up to a space or separator; a ")" or "]" only inside the value, so `(auth=x)` keeps its ")".
  String.raw`(?:(?:Bearer|Basic|Token|Digest)\s+)?(?:\[redacted\]|(?:${BARE_CHAR}|\\(?!")|[)\]](?=${BARE_CHAR}))+)`,
].join('|');
const ASSIGNMENT = new RegExp(String.raw`\b(${SECRET_NAME})(${ASSIGN})(${VALUE})`, 'gi');

/**
 * Values that say how something is set up, not what the secret is: `auth=env`, `password: none`,
 * `token=$GHCR_TOKEN`, `host key: SHA256:…` (a public fingerprint). Kept so the log still reads.
 */
const NOT_A_SECRET = /^(?:|env|none|null|nil|true|false|on|off|yes|no|enabled|disabled|required|optional|unset|\*+|\$\{?[A-Z_][A-Z0-9_]*\}?|(?:SHA256|MD5):[A-Za-z0-9+/:=]+)$/i;

function redactAssignment(match: string, name: string, assign: string, value: string): string {
  const quote = /^(\\"|"|')/.exec(value)?.[1] ?? '';
  const inner = quote ? value.slice(quote.length, value.length - quote.length) : value.replace(/^(?:Bearer|Basic|Token|Digest)\s+/i, '');
  if (NOT_A_SECRET.test(inner)) return match;
  return `${name}${assign}${quote}${R}${quote}`;
}

const LOG_PATTERNS: Array<[RegExp, string]> = [[/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, R]];

export function scrubLog(text: string, knownSecrets: readonly string[] = []): string {
  let out = scrub(text, knownSecrets);
  for (const [re, replacement] of LOG_PATTERNS) out = out.replace(re, replacement);
  return out.replace(ASSIGNMENT, redactAssignment);
}
