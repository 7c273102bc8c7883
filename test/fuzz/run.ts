// npm test's API fuzz suite (test/suites/50-fuzz.sh): the real `crabwatt serve --device sim` with a
// token, on a free loopback port and a scratch database, and against it
//   1. /docs/json validated as the OpenAPI version it claims (openapi-spec-validator),
//   2. schemathesis over every documented operation (examples, coverage, fuzzing and stateful
//      sequences through the links it infers), a bounded number of examples each, deterministically:
//      no 5xx, every response's status, content type and body as documented,
//   3. afterwards ingest still stores windows: whatever the fuzzer sent (calibrations at the schema's
//      limits among it), the device's next windows reach the database.
// Writes "<passed> <failed> <skipped>" to $CRABWATT_RESULTS/fuzz.counts (one per operation, the
// stateful run, the document and the ingest check) and prints the fuzzer's counts.
//
//   npx tsx test/fuzz/run.ts [--max-examples N]     (after `bash test/fuzz/venv.sh`)

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { getJson, scratchDir, startServe, until } from '../faults/serve-process.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const VENV_BIN = join(ROOT, 'build/fuzz-venv/bin');
// Not positive_data_acceptance: it takes every schema-valid request for one the server must accept, and
// the API refuses some on purpose with a documented 400/422 (from after to, an unknown time zone, a
// pretrigger past the pairs, more pairs than this device holds, a plain GET of the WebSocket).
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
  'negative_data_rejection',
  'missing_required_header',
  'ignored_auth',
  'use_after_free',
  'ensure_resource_availability',
];
/** Windows the device must send after the fuzz before the database is asked whether it stored them. */
const WINDOWS_AFTER = 25;

interface Outcome {
  name: string;
  ok: boolean;
  detail?: string;
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    const echo = (b: Buffer) => {
      output += b.toString();
      process.stdout.write(b);
    };
    child.stdout.on('data', echo);
    child.stderr.on('data', echo);
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

/** The schemathesis JUnit report: one test case per operation and one for the stateful run. */
function junitCases(xml: string): Outcome[] {
  const out: Outcome[] = [];
  for (const m of xml.matchAll(/<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = m[3] ?? '';
    const failed = /<(failure|error)\b/.test(body);
    out.push({ name: m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&'), ok: !failed, ...(failed && { detail: body.slice(0, 2000) }) });
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'max-examples': { type: 'string', default: '10' } } });
  const results = process.env.CRABWATT_RESULTS ?? join(ROOT, 'build/test-results');
  mkdirSync(results, { recursive: true });
  const outcomes: Outcome[] = [];
  const python = join(VENV_BIN, 'python');
  if (!existsSync(python)) {
    console.error(`fuzz: ${python} is missing: run 'bash test/fuzz/venv.sh' (test/setup.sh does it for npm test)`);
    writeFileSync(join(results, 'fuzz.counts'), '0 1 0\n');
    return 1;
  }

  const scratch = scratchDir('crabwatt-fuzz-');
  const token = randomBytes(16).toString('hex');
  const auth = { headers: { authorization: `Bearer ${token}` } };
  const startedMs = Date.now();
  const serve = await startServe({ args: ['--device', 'sim', '--db', join(scratch.dir, 'crabwatt.sqlite'), '--token', token] });
  try {
    interface Devices { devices: { id: string; counters: { frames: number; windows: number } }[] }
    const device = async () => (await getJson<Devices>(`${serve.url}/api/devices`, auth)).devices[0];
    // The fuzzer's first requests should find a device with windows stored, as a user's would.
    await until(async () => ((await device())?.counters.frames ?? 0) > 0 || undefined);

    const spec = join(scratch.dir, 'openapi.json');
    writeFileSync(spec, await (await fetch(`${serve.url}/docs/json`)).text());
    const valid = await run(python, ['-m', 'openapi_spec_validator', spec], scratch.dir);
    outcomes.push({ name: 'the document validates as the OpenAPI version it claims', ok: valid.code === 0, detail: valid.output });

    const junit = join(scratch.dir, 'junit.xml');
    const fuzz = await run(
      join(VENV_BIN, 'schemathesis'),
      [
        'run', `${serve.url}/docs/json`,
        '--header', `Authorization: Bearer ${token}`,
        '--checks', CHECKS.join(','),
        '--max-examples', values['max-examples'],
        '--generation-deterministic',
        '--workers', '1',
        '--continue-on-failure',
        '--no-color',
        '--report', 'junit',
        '--report-junit-path', junit,
      ],
      scratch.dir,
    );
    const cases = existsSync(junit) ? junitCases(readFileSync(junit, 'utf8')) : [];
    outcomes.push(...cases.map((c) => ({ ...c, name: `schemathesis: ${c.name}` })));
    if (cases.length === 0 || (fuzz.code !== 0 && cases.every((c) => c.ok))) {
      outcomes.push({ name: 'schemathesis ran to its report', ok: false, detail: `exit ${fuzz.code}` });
    }
    const generated = /(\d+) generated/.exec(fuzz.output)?.[1] ?? '?';
    const failures = /(\d+) unique failures?/.exec(fuzz.output)?.[1] ?? '0';
    const scenarios = /Scenarios:\s+(\d+)/.exec(fuzz.output)?.[1] ?? '0';

    // Ingest after the fuzz: the frame counter counts windows received, the history what was stored. Window
    // times follow the device's sample clock, which a loaded machine slows, so the question is not "any window
    // since the fuzz ended by the wall clock" but "more windows stored than before": an hour's raw history
    // around the run in 360 ms buckets, where every new window fills a bucket (windows are 200 ms apart).
    const id = (await device())!.id;
    const q = new URLSearchParams({ device: id, from: String(startedMs - 600_000), to: String(startedMs + 3_000_000), fields: 'p', points: '10000' });
    const storedBuckets = async () =>
      (await getJson<{ series: { p: { mean: (number | null)[] } } }>(`${serve.url}/api/history?${q}`, auth)).series.p.mean.filter((v) => v !== null).length;
    const storedAtEnd = await storedBuckets();
    // Windows, not frames: since the waveform stream, frames arrive ~250/s and 25 of them can all be
    // waveform frames sent before the next window.
    const windowsAtEnd = (await device())!.counters.windows;
    await until(async () => ((await device())!.counters.windows >= windowsAtEnd + WINDOWS_AFTER ? true : undefined));
    const stored = (await storedBuckets()) - storedAtEnd;
    outcomes.push({
      name: `ingest stores windows after the fuzz (${WINDOWS_AFTER} received)`,
      ok: stored > 0,
      detail: `no window stored since the fuzz ended; serve's log (${join(results, 'fuzz-serve.log')}) ends:\n${serve.stderr().split('\n').slice(-12).join('\n')}`,
    });

    const operations = cases.filter((c) => !/^Stateful/.test(c.name)).length;
    console.log(`fuzz: ${operations} operations, ${generated} test cases generated, ${scenarios} stateful scenarios, ${failures} unique failures (schemathesis, deterministic, at most ${values['max-examples']} examples per operation and phase)`);
  } finally {
    const code = await serve.stop();
    writeFileSync(join(results, 'fuzz-serve.log'), serve.stderr());
    if (code !== 0) outcomes.push({ name: 'serve exits cleanly on Ctrl-C after the fuzz', ok: false, detail: `exit ${code}` });
    scratch.remove();
  }

  const failed = outcomes.filter((o) => !o.ok);
  for (const o of failed) console.log(`fuzz: FAILED ${o.name}\n${o.detail ?? ''}`);
  const passed = outcomes.length - failed.length;
  writeFileSync(join(results, 'fuzz.counts'), `${passed} ${failed.length} 0\n`);
  console.log(`fuzz: ${passed} passed, ${failed.length} failed`);
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
