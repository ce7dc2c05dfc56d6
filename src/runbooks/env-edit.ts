import type { EnvironmentConfig } from '../config/schema.js';
import { assignmentPattern, parseEnvLines } from '../engramia/compose.js';
import type { RemoteCommand } from '../ssh/quote.js';

/**
 * Edits of `.env` on the host, as fixed scripts whose values arrive as $1 $2 $3.
 *
 * `.env` holds every host secret, so an edit must never half-happen nor leave a copy behind:
 * the new file is written next to it under umask 077, checked line by line against the old one
 * (a full disk truncates it without awk always noticing), given `.env`'s owner and mode, and only
 * then moved over it (atomic). A trap removes the temp file on every path. A `.env` whose owner
 * may not write it is refused: root's `mv` would replace it regardless, and that mode is a
 * person's explicit "do not touch".
 *
 * `export NAME=…` and `NAME = …` are the same variable to compose and to the runbook's `sed`:
 * set replaces them, unset removes them.
 */

// awk: whether line `l` assigns variable `k`, in any form compose accepts.
const IS_KEY =
  'function iskey(l) { sub(/^[ \\t]*(export[ \\t]+)?/, "", l); return index(l, k) == 1 && substr(l, length(k) + 1) ~ /^[ \\t]*=/ }';

// Replaces the first assignment in place, drops the others, or appends one.
const SET_AWK = `${IS_KEY} iskey($0) { if (!done) { print k "=" v; done = 1 } next } { print } END { if (!done) print k "=" v }`;
const UNSET_AWK = `${IS_KEY} !iskey($0) { print }`;
// Old file, then new file: every other line kept in order, and exactly the wanted assignment (want "" = none).
const VERIFY_AWK =
  `${IS_KEY} FILENAME == ARGV[1] { if (!iskey($0)) a[++na] = $0; next } ` +
  '{ if (iskey($0)) { nk++; if ($0 != want) bad = 1 } else if ($0 != a[++nb]) bad = 1 } ' +
  'END { if (bad || nb != na || nk != (want != "")) exit 1 }';

/** Shared head and tail of both edits; `$EDIT` is the awk program, `$want` the line that must result. */
function script(editAwk: string, wantExpr: string): string {
  return [
    'set -eu',
    'umask 077',
    // Follow a symlinked .env to the real file, and write the temp file next to that.
    'f=$(readlink -f -- "$1"); k=$2; v=${3-}',
    `want=${wantExpr}`,
    'if [ ! -f "$f" ]; then echo "chatops: $1 does not exist in $(pwd); nothing changed" >&2; exit 1; fi',
    'case $(stat -c %A -- "$f") in ??w*) ;; *) echo "chatops: $1 is read-only (mode $(stat -c %a -- "$f")); nothing changed" >&2; exit 1 ;; esac',
    't=',
    'trap \'if [ -n "$t" ]; then rm -f -- "$t"; fi\' EXIT',
    "trap 'exit 1' HUP INT TERM",
    't=$(mktemp -- "$f.chatops.XXXXXX")',
    `awk -v k="$k" -v v="$v" '${editAwk}' "$f" > "$t"`,
    `if ! awk -v k="$k" -v want="$want" '${VERIFY_AWK}' "$f" "$t"; then echo "chatops: the rewritten $1 did not read back as expected (disk full?); nothing changed" >&2; exit 1; fi`,
    'chown --reference="$f" -- "$t"',
    'chmod --reference="$f" -- "$t"',
    'mv -f -- "$t" "$f"',
    't=',
  ].join('\n');
}

// Shown to people in place of the ~1 KB script (docs/host-edits.md describes it).
const LABEL = '<.env edit script: temp file, checked, mv>';

export const SET_ENV_SCRIPT = script(SET_AWK, '"$k=$v"');
export const UNSET_ENV_SCRIPT = script(UNSET_AWK, "''");

export function setEnvVar(env: EnvironmentConfig, name: string, value: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['sh', '-c', SET_ENV_SCRIPT, 'chatops-set-env', '.env', name, value], scriptLabel: LABEL };
}

export function unsetEnvVar(env: EnvironmentConfig, name: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['sh', '-c', UNSET_ENV_SCRIPT, 'chatops-unset-env', '.env', name], scriptLabel: LABEL };
}

/** Only the assignment lines of `names` cross the connection: `.env`'s secrets stay on the host. */
export function readEnvVars(env: EnvironmentConfig, names: readonly string[]): RemoteCommand {
  return { cwd: env.deployPath, argv: ['grep', '-E', assignmentPattern(names), '.env'] };
}

/**
 * What `grep` of `readEnvVars` says about one variable: its value, null when unset, or undefined
 * when `.env` could not be read (grep exits 1 for "no line", 2 for an error).
 */
export function readBack(exitCode: number | null, stdout: string, name: string): string | null | undefined {
  if (exitCode === 1) return null;
  if (exitCode !== 0) return undefined;
  return parseEnvLines(stdout).get(name) ?? null;
}
