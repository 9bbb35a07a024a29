import { z } from 'zod';

/**
 * The OpenAPI document is generated from the same zod schemas the routes validate with:
 * each route module declares its operations here, so the document cannot drift from the code.
 */
interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string; // express style, /v1/customers/:externalId
  summary: string;
  tag: string;
  auth: 'operator' | 'admin' | 'ingest' | 'none';
  body?: z.ZodType;
  query?: z.ZodObject;
  responses?: Record<number, string>;
}

const operations: Operation[] = [];

export function describeOperation(op: Operation): void {
  if (!operations.some((o) => o.method === op.method && o.path === op.path)) operations.push(op);
}

const toJson = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
      required: ['code', 'message'],
    },
  },
};

export function buildOpenApi(publicUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const path = op.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const params = [...op.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (op.query) {
      const js = toJson(op.query) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        params.push({ name, in: 'query', required: (js.required ?? []).includes(name), schema: schema as { type: string } });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, description] of Object.entries(op.responses ?? { 200: 'OK' })) responses[status] = { description };
    responses.default = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    paths[path] ??= {};
    paths[path][op.method] = {
      summary: op.summary,
      tags: [op.tag],
      security: op.auth === 'none' ? [] : [{ bearer: [] }],
      'x-hark-auth': op.auth,
      parameters: params,
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: toJson(op.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'hark', version: '1', description: 'Email/SMS campaign automation for retailers' },
    servers: [{ url: publicUrl }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: errorSchema } },
    paths,
  };
}
