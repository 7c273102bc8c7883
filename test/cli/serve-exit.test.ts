// Stopping `serve` (Ctrl-C) says what was written, so the user knows nothing was lost (issue 15, defect 7).

import { describe, expect, it } from 'vitest';
import { serveSimulated } from '../../server/api/serve-in-process.ts';

describe('serve on stop', () => {
  it('says how many queued rows it wrote, how many windows this run stored and the energy total', async () => {
    const served = await serveSimulated();
    const ingest = served.runtime.sessions[0]!.ingest;
    await new Promise<void>((resolve) => ingest.once('window', () => resolve()));
    await served.close();
    const last = served.log().trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(
      /^crabwatt: stopped: \d+ queued window\(s\) and gap\(s\) written to \S+crabwatt\.sqlite; [1-9]\d* window\(s\) stored this run; device [0-9a-f]{16}: energy total \d+\.\d+ Wh$/,
    );
  });
});
