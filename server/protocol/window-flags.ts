// WINDOW_FLAG bits by name (definition.ts), for what people read: replay's JSON lines, the CSV's flag_names column
// and `export --help`.

import { WINDOW_FLAG } from './definition.ts';

const FLAGS = Object.entries(WINDOW_FLAG) as [keyof typeof WINDOW_FLAG, number][];

/** The names of the bits set in `bits`, lowest bit first. */
export function windowFlagNames(bits: number): string[] {
  return FLAGS.filter(([, bit]) => (bits & bit) !== 0).map(([name]) => name);
}

/** Every flag as NAME=BIT, e.g. 'CLIP_V=1, CLIP_I=2, …'. */
export function windowFlagList(): string {
  return FLAGS.map(([name, bit]) => `${name}=${bit}`).join(', ');
}
