import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Worker } from 'bullmq';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startConnectorWorker } from '../workers/connector-worker';
import { ensureConsoleBuilt } from './helpers/console-build';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/**
 * The console's Connectors page in chromium: create a Shopify connector, read its URL and where to
 * paste it, then see a delivery Shopify would send (signed here as Shopify signs) listed as stored.
 */
const ARTIFACTS = resolve(__dirname, 'artifacts');
let srv: TestServer;
let worker: Worker;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  ensureConsoleBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startTestServer();
  worker = await startConnectorWorker(srv.deps, { concurrency: 4 });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && problems.push(m.text()));
  // Failed requests are recorded by URL instead, so that the browser's own favicon probe is told apart.
  page.on('response', (r) => r.status() >= 400 && !r.url().endsWith('/favicon.ico') && problems.push(`${r.status()} ${r.url()}`));
  page.on('pageerror', (e) => problems.push(e.message));
}, 60000);

afterAll(async () => {
  await browser?.close();
  await worker?.close();
  await srv?.close();
});

test('when a Shopify connector is created in the console, then its URL and where to paste it are shown, and a signed order appears as stored', async () => {
  const ws = await newWorkspace(srv.url, 'connector shop');
  await page.goto(`${srv.url}/app/`);
  await page.getByLabel('Admin API key').fill(ws.key);
  await page.keyboard.press('Enter');
  await page.getByRole('link', { name: 'Connectors' }).click();
  await page.getByLabel('Platform').selectOption('shopify');
  await page.getByLabel('Connector name').fill('Main street shop');
  const secret = 'shpss_console_test_secret_01';
  await page.getByLabel('Webhook secret').fill(secret);
  await page.getByRole('button', { name: 'Create connector' }).click();

  const urlField = page.getByLabel('Webhook URL');
  await urlField.waitFor();
  const url = await urlField.inputValue();
  const list = (await ws.api.get('/v1/connectors')).body.data;
  expect(list).toHaveLength(1);
  expect(url).toBe(list[0].url);
  expect(url).toMatch(new RegExp(`/connect/shopify/${list[0].id}$`));
  expect(await page.getByText('Settings → Notifications → Webhooks').first().isVisible()).toBe(true);
  expect(await page.content()).not.toContain(secret);

  const body = readFileSync(resolve(__dirname, 'fixtures/connectors/shopify-order-pos.json'));
  const res = await fetch(srv.url + new URL(url).pathname, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': 'console-1', 'x-shopify-hmac-sha256': createHmac('sha256', secret).update(body).digest('base64') },
    body,
  });
  expect(res.status).toBe(200);
  const table = page.getByRole('table', { name: 'Last deliveries' });
  for (const end = Date.now() + 15000; ; ) {
    await page.getByRole('button', { name: 'Refresh' }).click();
    const text = (await table.textContent()) ?? '';
    if (text.includes('stored')) break;
    if (Date.now() > end) throw new Error(`delivery not shown as stored: ${text}`);
    await page.waitForTimeout(200);
  }
  expect(await table.textContent()).toContain('orders/create');
  await page.screenshot({ path: resolve(ARTIFACTS, 'console-connectors.png'), fullPage: true });
  expect(problems).toEqual([]);
}, 60000);
