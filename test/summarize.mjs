// Adds up the counts every suite wrote and prints the closing line CI reads.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...failedSuites] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.counts')).sort()) {
  const [p, f, s] = readFileSync(join(dir, file), 'utf8').trim().split(/\s+/).map(Number);
  console.log(`  ${file.replace(/\.counts$/, '').padEnd(12)} ${p} passed, ${f} failed, ${s} skipped`);
  passed += p;
  failed += f;
  skipped += s;
}
if (failedSuites.length > 0) console.log(`failed suites: ${failedSuites.join(', ')}`);
if (process.env.CI === 'true' && skipped > 0) {
  console.log(`CI=true forbids skipped tests, and ${skipped} were skipped`);
  failedSuites.push('skips');
}
console.log(`total: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failedSuites.length > 0 || failed > 0 ? 1 : 0);
