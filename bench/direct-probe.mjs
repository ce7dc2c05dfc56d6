// The host work of a `health` job without the bot or SSH: the simulated `docker compose ps`, the `grep` of
// .env and the three API requests, for each environment alone (one after another) and for all at once.
// Run as its own small process (spawning 40 processes from the large bench process would measure its
// fork() cost instead). Input: one JSON argument { envs: [{ name, deployPath, apiUrl }], apiKey, dockerShim,
// singlesFirst, fanoutOnly? } (an environment may be listed more than once); output: one JSON line { singles: { name: ms }, fanoutMs }.
import { spawn } from 'node:child_process';

const input = JSON.parse(process.argv[2] ?? '{}');

function run(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: 'ignore', env: { PATH: process.env.PATH } });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

async function get(url, auth) {
  const res = await fetch(url, { headers: auth ? { authorization: `Bearer ${input.apiKey}` } : {} });
  await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
}

function probe(e) {
  return Promise.all([
    run(process.execPath, [input.dockerShim, 'compose', '-f', 'docker-compose.prod.yml', 'ps', '-a', '--format', 'json'], e.deployPath),
    run('grep', ['-E', '^(ENGRAMIA_MAINTENANCE|IMAGE_TAG)=', '.env'], e.deployPath),
    get(`${e.apiUrl}/v1/version`, false),
    get(`${e.apiUrl}/v1/health`, true),
    get(`${e.apiUrl}/v1/health/deep`, true),
  ]);
}

const singles = {};
let fanoutMs = 0;
const doSingles = async () => {
  for (const e of input.envs) {
    const t = performance.now();
    await probe(e);
    singles[e.name] = performance.now() - t;
  }
};
const doFanout = async () => {
  const t = performance.now();
  await Promise.all(input.envs.map(probe));
  fanoutMs = performance.now() - t;
};
if (input.fanoutOnly) {
  await doFanout();
} else if (input.singlesFirst) {
  await doSingles();
  await doFanout();
} else {
  await doFanout();
  await doSingles();
}
process.stdout.write(`${JSON.stringify({ singles, fanoutMs })}\n`);
