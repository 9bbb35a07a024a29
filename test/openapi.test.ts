import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startTestServer, TestServer } from './helpers/server';
import { client } from './helpers/api';

/**
 * Every endpoint of the contract (/work/shared/API.md), written out here as METHOD + path, must be
 * in the server's OpenAPI document: the console's typed client is generated from it (npm run gen:api),
 * so an endpoint missing there is one the console cannot call typed.
 */
const API_MD = [
  'POST /v1/workspaces',
  'POST /v1/api-keys',
  'GET /v1/api-keys',
  'DELETE /v1/api-keys/:id',
  'GET /v1/settings',
  'PATCH /v1/settings',
  'PUT /v1/customers/:externalId',
  'POST /v1/customers/batch',
  'GET /v1/customers/:externalId',
  'DELETE /v1/customers/:externalId',
  'GET /v1/customers/:externalId/export',
  'GET /v1/customers',
  'GET /v1/customers/:externalId/timeline',
  'POST /v1/imports',
  'GET /v1/imports/:id',
  'GET /v1/imports',
  'POST /v1/purchases',
  'POST /v1/purchases/batch',
  'POST /v1/purchases/:orderId/refund',
  'POST /v1/events',
  'POST /v1/events/batch',
  'GET /v1/segments/fields',
  'GET /v1/segments/presets',
  'POST /v1/segments',
  'GET /v1/segments',
  'GET /v1/segments/:id',
  'PATCH /v1/segments/:id',
  'DELETE /v1/segments/:id',
  'POST /v1/segments/preview',
  'GET /v1/segments/:id/count',
  'GET /v1/segments/:id/members',
  'POST /v1/segments/:id/snapshot',
  'GET /v1/segments/:id/explain/:externalId',
  'POST /v1/templates',
  'POST /v1/templates/:id/preview',
  'POST /v1/campaigns',
  'POST /v1/campaigns/:id/send',
  'POST /v1/campaigns/:id/schedule',
  'POST /v1/campaigns/:id/cancel',
  'GET /v1/campaigns/:id',
  'GET /v1/campaigns/:id/messages',
  'GET /v1/campaigns/:id/report',
  'POST /v1/automations',
  'POST /v1/automations/:id/run',
  'GET /v1/automations/:id',
  'PATCH /v1/automations/:id',
  'GET /v1/scoring',
  'PUT /v1/scoring',
  'POST /v1/predictions/fit',
  'GET /v1/predictions/model',
  'POST /v1/predictions/validate',
  'GET /v1/predictions/customers/{externalId}',
  'GET /v1/messages',
  'GET /v1/inbox',
  'POST /v1/templates/:id/test',
  'POST /v1/campaigns/:id/test',
  'POST /v1/connectors',
  'GET /v1/connectors',
  'GET /v1/connectors/:id',
  'DELETE /v1/connectors/:id',
  'GET /v1/connectors/:id/deliveries',
  'POST /connect/:type/:id',
  'GET /u/:token',
  'POST /u/:token',
  'GET /o/:token',
  'GET /c/:token',
  'POST /webhooks/twilio/status',
  'POST /webhooks/twilio/inbound',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.json',
  'GET /docs',
];

type Doc = { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }; parameters?: Array<{ name: string; in: string }> }>> };

/** "GET /v1/segments/:id" -> "GET /v1/segments/{id}", as OpenAPI writes paths. */
const openApiName = (e: string) => e.replace(/:([A-Za-z]+)/g, '{$1}');
const operations = (doc: Doc) => new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv?.close();
});

describe('/openapi.json against the API contract', () => {
  test('when /openapi.json is fetched, then every endpoint of API.md is in it', async () => {
    const res = await client(srv.url).get<Doc>('/openapi.json');
    expect(res.status).toBe(200);
    const have = operations(res.body);
    expect(API_MD.map(openApiName).filter((e) => !have.has(e))).toEqual([]);
  });

  test('when the segment endpoints are read, then their bodies and queries come from the schemas the handlers parse with', async () => {
    const doc = (await client(srv.url).get<Doc>('/openapi.json')).body;
    const schemaOf = (path: string, method: string) => doc.paths[path]?.[method]?.requestBody?.content['application/json']?.schema;
    expect(Object.keys(schemaOf('/v1/segments/preview', 'post')?.properties ?? {})).toEqual(expect.arrayContaining(['definition', 'sampleSize']));
    expect(Object.keys(schemaOf('/v1/segments/{id}', 'patch')?.properties ?? {})).toEqual(expect.arrayContaining(['name', 'definition']));
    const members = doc.paths['/v1/segments/{id}/members']?.get?.parameters ?? [];
    expect(members.map((p) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['path:id', 'query:limit', 'query:cursor']));
    const report = doc.paths['/v1/campaigns/{id}/report']?.get?.parameters ?? [];
    expect(report.map((p) => `${p.in}:${p.name}`)).toContain('query:groupBy');
  });

  test('when the console\'s generated client types are read, then they have every path of API.md (npm run gen:api was run)', () => {
    // ui/openapi.json is a build intermediate (gitignored); ui/src/api-types.ts is what the console compiles against.
    const types = readFileSync(resolve(__dirname, '../ui/src/api-types.ts'), 'utf8');
    const paths = new Set([...types.matchAll(/^ {4}"(\/[^"]*)": \{$/gm)].map((m) => m[1]));
    expect(paths.size).toBeGreaterThan(0);
    expect([...new Set(API_MD.map((e) => openApiName(e).split(' ')[1]))].filter((p) => !paths.has(p))).toEqual([]);
  });
});
