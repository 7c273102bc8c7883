// How `crabwatt` runs (node flags, glibc malloc tunables) is set once, in the bin's shebang
// (server/bin/crabwatt.mjs): the npm scripts run that file rather than node, and the API benchmark measures the
// export with what the shebang says.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { servedRuntime } from '../../server/api/bench.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
const BIN = fileURLToPath(new URL('../../server/bin/crabwatt.mjs', import.meta.url));

describe('runtime of the shipped commands', () => {
  it('comes from the shebang: a bounded young generation and malloc thresholds above a pack BLOB', () => {
    const r = servedRuntime();
    expect(r.nodeFlags).toContain('--max-semi-space-size=2');
    const tunables = Object.fromEntries(r.env.GLIBC_TUNABLES!.split(':').map((t) => t.split('=') as [string, string]));
    // A pack BLOB is 3600 records of 41 float64: 1.18 MB. It must come from the heap, and a few must stay free there.
    const packBytes = 3600 * 41 * 8;
    expect(Number(tunables['glibc.malloc.mmap_threshold'])).toBeGreaterThan(packBytes);
    expect(Number(tunables['glibc.malloc.trim_threshold'])).toBeGreaterThan(2 * packBytes);
  });

  it.each(['start', 'bench'])('npm run %s runs the bin itself, so its shebang applies', (script) => {
    expect(pkg.scripts[script]!.startsWith('server/bin/crabwatt.mjs ')).toBe(true);
  });

  it('the shebang line, run as the kernel runs it, gives node that environment and those flags', () => {
    const shebang = readFileSync(BIN, 'utf8').split('\n', 1)[0]!;
    const [interpreter, arg] = [shebang.slice(2, shebang.indexOf(' ')), shebang.slice(shebang.indexOf(' ') + 1)];
    // The kernel passes everything after the interpreter as one argument; env -S splits it.
    const probe = spawnSync(interpreter, [arg, '-p', "process.env.GLIBC_TUNABLES + ' ' + process.execArgv.join(' ')"], {
      encoding: 'utf8',
      env: { ...process.env, GLIBC_TUNABLES: '' },
    });
    expect(probe.status, probe.stderr).toBe(0);
    const r = servedRuntime();
    expect(probe.stdout.trim()).toBe(`${r.env.GLIBC_TUNABLES} ${r.nodeFlags.join(' ')} -p process.env.GLIBC_TUNABLES + ' ' + process.execArgv.join(' ')`);
  });

  it('the bin runs', () => {
    const probe = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.stdout).toMatch(/^usage: crabwatt COMMAND/);
  });
});
