// GET /api/events?kind=: the route hands the kind to the store (server/store/events.ts filters, test/store/
// events.test.ts) and refuses one it does not know.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/api/app.ts';
import { DEVICE, T0, fakes } from './fakes.ts';

let app: FastifyInstance;
beforeEach(async () => {
  app = await buildApp({ ...fakes() });
});
afterEach(async () => app.close());

describe('the event log by kind', () => {
  it('passes ?kind= to the store and refuses a kind it does not know', async () => {
    const r = await app.inject(`/api/events?device=${DEVICE}&from=${T0}&to=${T0 + 3_600_000}&kind=no_data`);
    expect(r.json().events.map((e: { kind: string }) => e.kind)).toEqual(['no_data']);
    const bad = await app.inject(`/api/events?device=${DEVICE}&from=${T0}&to=${T0 + 3_600_000}&kind=bogus`);
    expect(bad.statusCode).toBe(400);
  });
});
