// `crabwatt replay`: a recorded CSV of signed ADC codes through the exact model (server/dsp/replay.ts).

import { createReadStream, existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { replay, ReplayInputError, streamWriter } from '../dsp/replay.ts';
import { CliError, parseCommandArgs, parseNumber, parsePqSettings, PQ_OPTIONS, str, UsageError, type Io } from './common.ts';

export const REPLAY_HELP = `crabwatt replay --input FILE.csv --rate HZ --v-scale VOLTS_PER_CODE --i-scale AMPS_PER_CODE
                [--mode cycles:K|fixed:N] [--hysteresis CODES]
                [--pq [--declared-v VOLTS] [--nominal-hz 50|60]]

Runs a recording through the exact DSP model and prints one JSON line per window:
vrms, irms, p, s, pf, n, freq_hz, energy_wh, samples (+ end_index, flags).
The CSV has a header naming the columns v and i, then signed ADC codes (-8192 … 8191) per line.
--input - reads standard input.

--pq also runs the decimator model and the power-quality analysis (docs/power-quality.md) and prints
  {"type":"pq", t_s, thd_v, thd_i, h_v[50], h_i[50], p_h[50]} per 10/12-cycle window and
  {"type":"event", kind, start_s, duration_s, extreme_v} per dip, swell or interruption.
  --declared-v defaults to 230, --nominal-hz to 50; --mode defaults to cycles:10 (cycles:12 at 60 Hz).
`;

export async function replayCommand(argv: string[], io: Io, stdin: Readable = process.stdin, stdout: Writable = process.stdout): Promise<number> {
  const { values } = parseCommandArgs('replay', argv, {
    input: { type: 'string', short: 'i' },
    rate: { type: 'string' },
    'v-scale': { type: 'string' },
    'i-scale': { type: 'string' },
    mode: { type: 'string' },
    hysteresis: { type: 'string' },
    pq: { type: 'boolean' },
    ...PQ_OPTIONS,
  });
  if (values['help']) {
    io.out(REPLAY_HELP);
    return 0;
  }
  const input = str(values, 'input');
  if (!input) throw new UsageError('replay needs --input FILE.csv (or - for standard input)');
  const positive = (n: number): boolean => n > 0;
  const need = (name: string): string => {
    const v = str(values, name);
    if (v === undefined) throw new UsageError(`replay needs --${name} (see \`crabwatt replay --help\`)`);
    return v;
  };
  const rate = parseNumber('rate', need('rate'), 0, positive, 'a sample rate in Hz > 0');
  const vScale = parseNumber('v-scale', need('v-scale'), 0, positive, 'volts per code > 0');
  const iScale = parseNumber('i-scale', need('i-scale'), 0, positive, 'amperes per code > 0');
  const hysteresisText = str(values, 'hysteresis');
  const pqOnly = ['declared-v', 'nominal-hz'].find((name) => str(values, name) !== undefined);
  if (values['pq'] !== true && pqOnly) throw new UsageError(`--${pqOnly} goes with --pq`);
  const pq = values['pq'] === true ? parsePqSettings(values) : undefined;
  if (input !== '-' && !existsSync(input)) throw new UsageError(`no such file '${input}'`);
  const source = input === '-' ? stdin : createReadStream(input);
  // An output error (EPIPE when `| head` has what it wanted) fails the next write instead of arriving as an
  // unhandled 'error' event.
  let outputError: Error | undefined;
  const onOutputError = (err: Error): void => {
    outputError ??= err;
  };
  stdout.on('error', onOutputError);
  const write = streamWriter(stdout);
  try {
    await replay({
      input: source,
      rate,
      vScale,
      iScale,
      ...(str(values, 'mode') ? { mode: str(values, 'mode')! } : {}),
      ...(pq ? { pq } : {}),
      ...(hysteresisText !== undefined
        ? { hysteresis: parseNumber('hysteresis', hysteresisText, 0, (n) => Number.isInteger(n) && n >= 0, 'an integer ≥ 0') }
        : {}),
      write: (line: string) => {
        if (outputError) throw outputError;
        return write(line);
      },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return 0;
    if (err instanceof ReplayInputError || err instanceof RangeError) throw new CliError(err.message);
    throw err;
  } finally {
    stdout.off('error', onOutputError);
    if (input !== '-') (source as ReturnType<typeof createReadStream>).destroy();
  }
  return 0;
}
