#!/usr/bin/env node
// Entry point: runs the TypeScript CLI through tsx so no build step stands between `npm install` and use.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli.ts');
process.exitCode = await main(process.argv.slice(2));
