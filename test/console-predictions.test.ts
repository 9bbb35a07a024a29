import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { ensureConsoleBuilt } from './helpers/console-build';
import { invertedHistory } from './helpers/predictions-data';

/** The Predictions page in chromium, on a workspace holding the CDNOW history fitted as of 1997-09-30. */
const ARTIFACTS = resolve(__dirname, 'artifacts');
let srv: TestServer;
let browser: Browser;
let page: Page;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
let model: any;
const problems: string[] = [];

beforeAll(async () => {
  ensureConsoleBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startTestServer();
  ws = await newWorkspace(srv.url, 'predictions console');
  const purchases = readFileSync(`${__dirname}/fixtures/data/cdnow-sample.txt`, 'utf8').trim().split('\n').map((line, i) => {
    const [, id, d, , value] = line.trim().split(/\s+/);
    return { orderId: `c-${i}`, customer: { externalId: String(Number(id)) }, occurredAt: `${d!.slice(0, 4)}-${d!.slice(4, 6)}-${d!.slice(6, 8)}T00:00:00Z`, total: Number(value) };
  });
  for (let i = 0; i < purchases.length; i += 1000) expect((await ws.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) })).status).toBe(200);
  const fit = await ws.api.post('/v1/predictions/fit', { asOf: '1997-09-30T00:00:00Z' });
  expect(fit.status).toBe(200);
  model = fit.body;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // Failed loads are caught by URL below (the browser's own favicon.ico probe 404s and is no page's request).
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()} ${new URL(r.url()).pathname}`));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

test('when the Predictions page is opened, then it shows the model, the validation in words with the API\'s figures, the calibration chart and the churnRisk distribution', async () => {
  await page.goto(`${srv.url}/app/`);
  await page.getByLabel('Admin API key').fill(ws.key);
  await page.keyboard.press('Enter');
  await page.getByRole('link', { name: 'Predictions' }).click();
  await page.getByTestId('model-card').waitFor();
  expect(await page.getByTestId('model-card').textContent()).toContain('MBG/NBD');
  expect(await page.getByTestId('model-card').textContent()).toContain('1997-09-30');
  const v = model.validation;
  const text = (await page.getByTestId('validation-text').textContent())!;
  expect(text).toContain(`Of the 20% of customers we rated most likely to lapse, ${(v.topChurned * 100).toFixed(1)}% did not buy`);
  expect(text).toContain(`ranking by days since the last purchase would have found ${(v.topChurnedByRecency * 100).toFixed(1)}%`);
  expect(await page.getByTestId('calibration-chart').locator('rect').count()).toBe(20);
  const bars = page.getByRole('img', { name: /Customers by churn risk/ }).locator('rect');
  expect(await bars.count()).toBe(10);
  expect(await page.getByTestId('flagged').count()).toBe(model.churn.flagged ? 1 : 0);
  await page.getByLabel('Customer externalId').fill('1');
  await page.getByRole('button', { name: 'Show churn risk' }).click();
  await page.getByTestId('churn-factors').waitFor();
  const why = (await ws.api.get('/v1/predictions/customers/1')).body;
  expect(await page.getByTestId('churn-risk').textContent()).toBe(`${(why.churnRisk * 100).toFixed(1)}%`);
  expect(await page.getByTestId('churn-factors').locator('li').count()).toBe(3);
  await page.screenshot({ path: resolve(ARTIFACTS, 'console-predictions.png'), fullPage: true });
  expect(problems).toEqual([]);
}, 60_000);

test('when the workspace\'s model lost to recency, then the page flags it and names the rule churnRisk fell back to', async () => {
  const other = await newWorkspace(srv.url, 'predictions flagged');
  const A = Date.parse('2025-06-01T00:00:00Z');
  const purchases = invertedHistory(A);
  for (let i = 0; i < purchases.length; i += 1000) expect((await other.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) })).status).toBe(200);
  const fit = await other.api.post('/v1/predictions/fit', { asOf: new Date(A).toISOString() });
  expect(fit.body.churn.flagged).toBe(true);
  const p2 = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    await p2.goto(`${srv.url}/app/#/predictions`);
    await p2.getByLabel('Admin API key').fill(other.key);
    await p2.keyboard.press('Enter');
    await p2.getByTestId('flagged').waitFor();
    expect(await p2.getByTestId('flagged').textContent()).toMatch(/ranked worse than plain days since the last purchase/);
    expect(await p2.getByTestId('churn-card').textContent()).toContain('Rule: recency');
    await p2.screenshot({ path: resolve(ARTIFACTS, 'console-predictions-flagged.png'), fullPage: true });
  } finally {
    await p2.close();
  }
}, 60_000);
