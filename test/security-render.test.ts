import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';

/** Issue 15, security item 6: what a render may cost is bounded, and MJML compiles off the API's event loop. */
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => srv.close());

const section = '<mj-section><mj-column><mj-text>Hello {{ customer.firstName }} lorem ipsum dolor sit amet</mj-text><mj-button href="https://x.example/a">Go</mj-button></mj-column></mj-section>';
const mjml = (n: number) => `<mjml><mj-body>${section.repeat(n)}</mj-body></mjml>`;

test('when large MJML templates compile, then the API keeps answering other requests meanwhile', async () => {
  const ws = await newWorkspace(srv.url, 'mjml');
  // Warm the compiler (its first run loads MJML's modules).
  expect((await ws.api.post('/v1/templates', { name: 'warm', channel: 'email', subject: 'x', body: mjml(1) })).status).toBe(201);
  const started = Date.now();
  const big = Promise.all([1, 2, 3, 4].map((i) => ws.api.post('/v1/templates', { name: `big ${i}`, channel: 'email', subject: 'x', body: mjml(300) })));
  await new Promise((r) => setTimeout(r, 100));
  const probes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
    probes.push(Date.now() - t0);
  }
  const res = await big;
  const compileMs = Date.now() - started;
  expect(res.map((r) => [r.status, r.body?.error])).toEqual(res.map(() => [201, undefined]));
  // The compiles take about a second in all; no health check waits for them.
  expect(compileMs).toBeGreaterThan(700);
  expect(Math.max(...probes)).toBeLessThan(250);
}, 60_000);

test('when an MJML body is larger than the compile bound, then 422 at once', async () => {
  const ws = await newWorkspace(srv.url, 'mjml-size');
  const t0 = Date.now();
  const res = await ws.api.post('/v1/templates', { name: 'huge', channel: 'email', subject: 'x', body: mjml(1500) });
  expect(res.status).toBe(422);
  expect(res.body.error.message).toMatch(/MJML/);
  expect(Date.now() - t0).toBeLessThan(1000);
});

test('when a Liquid template loops for ever, then it is a 422 within the render bound, not seconds of event loop', async () => {
  const ws = await newWorkspace(srv.url, 'liquid');
  const t0 = Date.now();
  const res = await ws.api.post('/v1/templates', { name: 'loop', channel: 'sms', body: '{% for i in (1..3000) %}{% for j in (1..3000) %}{% endfor %}{% endfor %}' });
  expect(res.status).toBe(422);
  expect(Date.now() - t0).toBeLessThan(1000);
});
