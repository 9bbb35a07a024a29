import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Worker } from 'bullmq';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { startSmtpPeer } from './helpers/smtp-peer';
import { ensureConsoleBuilt } from './helpers/console-build';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './helpers/browser';
import { closeWorkers, startWorkers } from '../workers/index';

// Run inside the page; the test project's types have no DOM lib.
declare const document: { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

/**
 * Trying hark out in the console, in chromium: the Inbox page (emails in sandboxed iframes, their
 * headers on demand, SMS with encoding and segments), "Send test" on a template and a campaign,
 * and a campaign that cannot deliver saying why.
 */
jest.setTimeout(90_000);
const ARTIFACTS = resolve(__dirname, 'artifacts');
const RUN = browserAvailable('test/console-tryout.test.ts');
const maybe = RUN ? describe : describe.skip;

let srv: TestServer;
let workers: Worker[] = [];
let browser: Browser;
let page: Page;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
const problems: string[] = [];
const failed: string[] = [];
const shot = (p: Page, name: string) => p.screenshot({ path: resolve(ARTIFACTS, `tryout-${name}.png`), fullPage: true });

const nav = (p: Page, name: string) => p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();

async function signIn(p: Page, url: string, key: string) {
  await p.goto(`${url}/app/`);
  await p.getByLabel('Admin API key').fill(key);
  await p.keyboard.press('Enter');
  await p.getByRole('link', { name: 'Inbox' }).waitFor();
}

beforeAll(async () => {
  if (!RUN) return;
  ensureConsoleBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startTestServer({ env: { TWILIO_API_URL: 'inbox:' } });
  workers = await startWorkers(srv.deps);
  ws = await newWorkspace(srv.url, 'tryout shop');
  await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', smsFrom: '+15005550006', postalAddress: '1 Main St' });
  for (const id of ['ann', 'bob']) await ws.api.put(`/v1/customers/${id}`, { email: `${id}@example.com`, firstName: id === 'ann' ? 'Ann' : 'Bob', emailConsent: 'subscribed' });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('response', (r) => r.status() >= 400 && failed.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`));
  await signIn(page, srv.url, ws.key);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await closeWorkers(workers);
  await srv?.close();
});

maybe('trying hark out in the console', () => {
  test('when a template is tested from its page, then the Inbox page shows the email in a sandboxed frame with its headers on demand, and viewing it is not an open', async () => {
    await nav(page, 'Templates');
    await page.getByRole('button', { name: 'New email template' }).click();
    await page.getByLabel('Template name').fill('Spring');
    await page.getByRole('button', { name: 'Create template' }).click();
    await page.getByLabel('Send test to').fill('me@example.com, boss@example.com');
    await page.getByLabel('Render as customer (external id, optional)').fill('ann');
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.getByTestId('test-results').getByText('boss@example.com').waitFor();
    expect(await page.getByTestId('test-results').locator('.badge').allTextContents()).toEqual(['sent', 'sent']);
    await shot(page, 'template-test');

    // A bad address: the API's 400 shows, nothing is sent.
    await page.getByLabel('Send test to').fill('not-an-address');
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.getByRole('alert').filter({ hasText: 'to.0' }).waitFor();

    await nav(page, 'Inbox');
    const email = page.getByRole('article', { name: 'Email to boss@example.com: [Test] Hello Ann' });
    await email.waitFor();
    const frame = email.frameLocator('iframe');
    await frame.getByText('Hi Ann,').waitFor();
    expect(await email.locator('iframe').getAttribute('sandbox')).toBe('');
    await email.getByRole('button', { name: 'Show headers' }).click();
    await email.getByTestId('headers').getByText('List-Unsubscribe-Post').waitFor();
    expect(await email.getByTestId('headers').textContent()).toContain('Subject[Test] Hello Ann');
    expect(await page.locator('article.inbox-email').count()).toBe(2);
    await shot(page, 'inbox-email');
  });

  test('when a campaign goes out and an SMS is tested, then both appear on the Inbox page, the SMS with its encoding and segment count', async () => {
    const seg = await ws.api.post('/v1/segments', { name: 'everyone', definition: { field: 'createdDaysAgo', op: 'gte', value: 0 } });
    const tpl = await ws.api.post('/v1/templates', { name: 'Sale', channel: 'email', subject: 'Sale for {{ customer.firstName }}', body: '<p>Sale, {{ customer.firstName }}</p>' });
    const c = await ws.api.post('/v1/campaigns', { name: 'Sale', channel: 'email', templateId: tpl.body.id, segmentIds: [seg.body.id] });
    await page.goto(`${srv.url}/app/#/campaigns/${c.body.id}`);
    await page.getByLabel('Send test to').fill('me@example.com');
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.getByTestId('test-results').getByText('me@example.com').waitFor();
    await page.getByRole('button', { name: 'Send now' }).click();
    await page.getByTestId('campaign-status').filter({ hasText: 'sent' }).waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('campaign-problems').count()).toBe(0);

    const sms = await ws.api.post('/v1/templates', { name: 'Txt', channel: 'sms', body: 'Hi {{ customer.firstName }} — 20% off' });
    await nav(page, 'Templates');
    await page.getByRole('button', { name: 'Txt' }).click();
    await page.getByLabel('Send test to').fill('+15125550100');
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.getByTestId('test-results').getByText('+15125550100').waitFor();
    expect(sms.status).toBe(201);

    await nav(page, 'Inbox');
    await page.getByRole('article', { name: 'Email to ann@example.com: Sale for Ann' }).waitFor();
    await page.getByRole('article', { name: 'Email to me@example.com: [Test] Sale for Alex' }).waitFor();
    const text = page.getByRole('article', { name: 'SMS to +15125550100' });
    await text.waitFor();
    expect(await text.getByTestId('sms-encoding').textContent()).toMatch(/^UCS-2 1 segment · \d+ characters$/);
    expect(await text.locator('pre').textContent()).toMatch(/^\[Test\] Hi Alex — 20% off/);
    await page.getByRole('button', { name: 'SMS', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('article.inbox-email').length === 0 && document.querySelectorAll('article.inbox-sms').length === 1);
    await shot(page, 'inbox-sms');
    // Viewing the inbox is not an open: the frame's own policy (img-src data:) keeps the pixel out,
    // even where the console and PUBLIC_URL share an origin (here they do not, so the console's policy refuses it too).
    expect(problems.some((p) => /\/o\/o\..*violates .*directive: "img-src data:"/.test(p))).toBe(true);
    const opened = await srv.deps.db('messages').where({ workspace_id: ws.id }).whereNotNull('opened_at').count({ n: '*' });
    expect(opened[0]!.n).toBe('0');
    // The one refused request was the bad address of the first test.
    expect(failed).toEqual([expect.stringMatching(/^POST \/v1\/templates\/[0-9a-f-]+\/test 400$/)]);
    expect(problems.filter((p) => !/Failed to load resource|^Loading the image '[^']*\/o\/o\./.test(p))).toEqual([]);
  });

  test('when the mail server refuses connections, then the campaign page says why and since when instead of a bar stuck at 0', async () => {
    const down = await startSmtpPeer();
    await down.close();
    const broken = await startTestServer({ env: { SMTP_URL: down.url } });
    const w = await startWorkers(broken.deps);
    const p2 = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      const b = await newWorkspace(broken.url, 'broken shop');
      await b.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
      await b.api.put('/v1/customers/c1', { email: 'c1@example.com', emailConsent: 'subscribed' });
      const seg = await b.api.post('/v1/segments', { name: 'all', definition: { field: 'createdDaysAgo', op: 'gte', value: 0 } });
      const tpl = await b.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'S', body: '<p>x</p>' });
      const c = await b.api.post('/v1/campaigns', { name: 'Stuck', channel: 'email', templateId: tpl.body.id, segmentIds: [seg.body.id] });
      await signIn(p2, broken.url, b.key);
      await p2.goto(`${broken.url}/app/#/campaigns/${c.body.id}`);
      await p2.getByRole('button', { name: 'Send now' }).click();
      const box = p2.getByTestId('campaign-problems');
      await box.waitFor({ timeout: 30_000 });
      const text = await box.textContent();
      expect(text).toMatch(/This campaign cannot deliver/);
      expect(text).toMatch(/1 message: The mail server \(SMTP_URL\) does not answer: SMTP E[A-Z]+: connection problem; hark keeps retrying\./);
      expect(text).toMatch(/since .*smtp_unreachable/);
      await shot(p2, 'campaign-problems');
    } finally {
      await p2.close();
      await closeWorkers(w);
      await broken.close();
    }
  });
});
