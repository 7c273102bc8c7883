// Shared CLI plumbing: typed errors that carry an exit code, argument parsing with per-command help, output.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_PQ_SETTINGS, NOMINAL_HZ, type PqSettings } from '../pq/settings.ts';
import { Store, StoreError } from '../store/store.ts';

/** An error whose message tells the user what to do; main() prints it and exits with `exitCode`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Wrong usage: exit code 2, like most Unix tools. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

export const DEFAULT_DB = 'data/crabwatt.sqlite';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

type Options = NonNullable<ParseArgsConfig['options']>;

export type ArgValues = Record<string, string | string[] | boolean | undefined>;

/** parseArgs with `--help` added and unknown options turned into a UsageError naming the command. */
export function parseCommandArgs(
  command: string,
  argv: string[],
  options: Options,
  allowPositionals = false,
): { values: ArgValues; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals,
      strict: true,
    });
    return { values: parsed.values as ArgValues, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message} (see \`crabwatt ${command} --help\`)`);
  }
}

/** A string option, or undefined. */
export function str(values: ArgValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A string option that may be given several times (`multiple: true`), in order; [] when absent. */
export function strs(values: ArgValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** A plain decimal number: Number() would also take '0x10', '0b1', ' 5 ', '' and 'Infinity'. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

export function parseNumber(name: string, text: string | undefined, fallback: number, check: (n: number) => boolean, hint: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!DECIMAL.test(text) || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} '${text}': ${hint}`);
  return n;
}

/** `--declared-v V` and `--nominal-hz 50|60` (replay --pq and serve): the power-quality analysis' settings. */
export const PQ_OPTIONS = { 'declared-v': { type: 'string' }, 'nominal-hz': { type: 'string' } } as const;

export function parsePqSettings(values: ArgValues): PqSettings {
  return {
    declaredV: parseNumber('declared-v', str(values, 'declared-v'), DEFAULT_PQ_SETTINGS.declaredV, (n) => n > 0, 'a voltage > 0'),
    nominalHz: parseNumber('nominal-hz', str(values, 'nominal-hz'), DEFAULT_PQ_SETTINGS.nominalHz, (n) => NOMINAL_HZ.includes(n), NOMINAL_HZ.join(' or ')),
  };
}

/** JSON with bigints as decimal strings (exact) rather than a TypeError. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The database opened read-only for a command beside serve; what the store refuses is the user's error. */
export function openForReading(dbPath: string): Store {
  try {
    return Store.open(dbPath, { readonly: true });
  } catch (err) {
    if (err instanceof StoreError) throw new CliError(err.message);
    throw err;
  }
}
