// Request bodies are JSON, whose values carry their type: one of the wrong type is refused, never converted.
// Fastify's ajv coerces types (coerceTypes: 'array'), which query strings and path parameters need (they
// are text), and it does so in bodies too: {"phase": null} was stored as phase 0, "0.05" as 0.05, true as 1.
// So every body schema is first checked as it stands by TypeBox's compiler (no coercion, no defaults);
// ajv then only fills in the defaults of fields left out.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { BadRequestError } from './params.ts';

/** Adds the strict check to every route registered on `app` after this call that has a body schema. */
export function refuseCoercedBodies(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = (route.schema as { body?: TSchema } | undefined)?.body;
    if (schema === undefined) return;
    const check = TypeCompiler.Compile(schema);
    const strict = async (req: FastifyRequest) => {
      if (check.Check(req.body)) return;
      const first = check.Errors(req.body).First();
      throw new BadRequestError(first ? `body${first.path}: ${first.message.toLowerCase()}` : 'body does not fit the schema');
    };
    const own = route.preValidation;
    route.preValidation = own === undefined ? [strict] : [strict, ...(Array.isArray(own) ? own : [own])];
  });
}
