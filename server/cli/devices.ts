// `crabwatt devices`: boards attached now (and in which mode), and the devices a database knows.

import { existsSync } from 'node:fs';
import { listDevices, type DiscoveredDevice } from '../device/discovery.ts';
import { nwhToWhString } from '../store/energy.ts';
import { StoreReader, type StoredDevice } from '../store/query.ts';
import { DEFAULT_DB, openForReading, parseCommandArgs, str, toJson, type Io } from './common.ts';

export const DEVICES_HELP = `crabwatt devices [--db FILE] [--json]

Lists attached boards — crabwatt (ready), bootloader (foboot, ready to flash) or unknown — and the devices
stored in the database (default ${DEFAULT_DB}) with their exact energy totals.
`;

const MODE_TEXT: Record<DiscoveredDevice['mode'], string> = {
  crabwatt: 'crabwatt firmware (ready: crabwatt serve)',
  bootloader: 'bootloader (foboot): flash with `crabwatt flash FILE.dfu`, or start the installed bitstream with `dfu-util -a 0 -e` (r0.1 stays in DFU until then; r0.2 also starts it when replugged without the button)',
  unknown: 'not a crabwatt',
};

export async function devicesCommand(argv: string[], io: Io, discover: () => Promise<DiscoveredDevice[]> = listDevices): Promise<number> {
  const { values } = parseCommandArgs('devices', argv, { db: { type: 'string' }, json: { type: 'boolean' } });
  if (values['help']) {
    io.out(DEVICES_HELP);
    return 0;
  }
  const notes: string[] = [];
  let attached: DiscoveredDevice[] = [];
  try {
    attached = await discover();
  } catch (err) {
    notes.push(`could not list USB devices: ${(err as Error).message}`);
  }
  const dbPath = str(values, 'db') ?? DEFAULT_DB;
  let stored: StoredDevice[] = [];
  if (existsSync(dbPath)) {
    const store = openForReading(dbPath);
    try {
      stored = new StoreReader(store.db).devices();
    } finally {
      store.close();
    }
  }
  if (values['json']) {
    io.out(`${toJson({ attached, stored, notes })}\n`);
    return 0;
  }
  const hex4 = (n: number | null): string => (n === null ? '????' : n.toString(16).padStart(4, '0'));
  io.out(attached.length === 0 ? 'attached: none (the simulated device runs with `crabwatt serve --device sim`)\n' : 'attached:\n');
  for (const d of attached) {
    io.out(`  ${d.path ?? '(no tty)'}  ${hex4(d.vid)}:${hex4(d.pid)}  ${d.serialNumber ?? ''}  ${MODE_TEXT[d.mode]}\n`);
  }
  io.out(stored.length === 0 ? `stored in ${dbPath}: none\n` : `stored in ${dbPath}:\n`);
  for (const d of stored) {
    const seen = d.lastSeenMs === null ? 'never' : new Date(d.lastSeenMs).toISOString();
    io.out(`  ${d.id}  ${d.name ?? ''}  total ${nwhToWhString(d.totalNwh)} Wh  epochs ${d.epochs}  last seen ${seen}\n`);
  }
  for (const n of notes) io.err(`crabwatt devices: ${n}\n`);
  return 0;
}
