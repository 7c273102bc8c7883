// The node flags `crabwatt serve` runs with are set once, in the bin's shebang (server/bin/crabwatt.mjs); the npm
// scripts that start node themselves must pass the same, and the API benchmark measures the export with them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { servedNodeFlags } from '../../server/api/bench.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };

describe('node flags of the shipped commands', () => {
  it('come from the shebang and bound the young generation', () => {
    expect(servedNodeFlags()).toContain('--max-semi-space-size=2');
  });

  it.each(['start', 'bench'])('npm run %s passes the same flags as the shebang', (script) => {
    const cmd = pkg.scripts[script]!;
    expect(cmd.startsWith(`node ${servedNodeFlags().join(' ')} server/bin/crabwatt.mjs `)).toBe(true);
  });
});
