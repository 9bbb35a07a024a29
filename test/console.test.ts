import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Worker } from 'bullmq';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { ensureConsoleBuilt } from './helpers/console-build';
import { closeWorkers, startWorkers } from '../workers/index';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './helpers/browser';

// These run inside the page (waitForFunction/evaluate); the test project's types have no DOM lib.
declare const document: { querySelector(selector: string): { textContent: string | null } | null };
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { length: number };

/**
 * The console in a real browser (Debian's chromium, headless) against a hark started here, with a
 * real SMTP server behind it. Screenshots of each page go to test/artifacts/ (gitignored).
 */
const ARTIFACTS = resolve(__dirname, 'artifacts');

let srv: TestServer;
let smtp: SmtpPeer;
let workers: Worker[] = [];
let browser: Browser;
let page: Page;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
const problems: string[] = [];
const FADING_WOMEN_IN_AUSTIN = { all: [{ preset: 'fading' }, { field: 'gender', op: 'eq', value: 'female' }, { field: 'city', op: 'eq', value: 'Austin' }] };

const daysAgo = (d: number) => new Date(Date.now() - d * 86400000).toISOString();
const shot = (name: string) => page.screenshot({ path: resolve(ARTIFACTS, `console-${name}.png`), fullPage: true });

async function seed() {
  // Fading: 3 purchases 10 days apart, the last 180 days ago. Active: the last one 10 days ago.
  const people: Array<[string, string, string, 'fading' | 'active']> = [
    ['w1', 'female', 'Austin', 'fading'], ['w2', 'female', 'Austin', 'fading'], ['w3', 'female', 'Austin', 'fading'],
    ['m1', 'male', 'Austin', 'fading'], ['w4', 'female', 'Dallas', 'fading'], ['w5', 'female', 'Austin', 'active'],
  ];
  for (const [id, gender, city, kind] of people) {
    const put = await ws.api.put(`/v1/customers/${id}`, { email: `${id}@example.com`, firstName: id.toUpperCase(), gender, city, emailConsent: 'subscribed', timezone: 'UTC' });
    expect(put.status).toBe(201);
    const last = kind === 'fading' ? 180 : 10;
    for (const [i, d] of [last + 20, last + 10, last].entries()) {
      const p = await ws.api.post('/v1/purchases', { orderId: `${id}-${i}`, customer: { externalId: id }, occurredAt: daysAgo(d), total: 40 });
      expect(p.status).toBe(201);
    }
  }
}

const RUN = browserAvailable('test/console.test.ts');
const maybe = RUN ? describe : describe.skip;

beforeAll(async () => {
  if (!RUN) return;
  ensureConsoleBuilt();
  mkdirSync(ARTIFACTS, { recursive: true });
  smtp = await startSmtpPeer();
  srv = await startTestServer({ env: { SMTP_URL: smtp.url } });
  workers = await startWorkers(srv.deps);
  ws = await newWorkspace(srv.url, 'console shop');
  await seed();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
}, 60000);

afterAll(async () => {
  await browser?.close();
  await closeWorkers(workers);
  await srv?.close();
  await smtp?.close();
});

maybe('marketer console in chromium', () => {
  test('when the admin key is typed and Enter pressed, then the overview shows the customers and the key is in no URL', async () => {
    await page.goto(`${srv.url}/app/`);
    await page.getByLabel('Admin API key').fill('not-a-key');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toMatch(/not accepted/);
    await page.getByLabel('Admin API key').fill(ws.key);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-testid=customers]')?.textContent === '6');
    await page.getByRole('img', { name: /Purchases per day/ }).waitFor();
    expect(page.url()).not.toContain(ws.key);
    expect(await page.evaluate(() => sessionStorage.getItem('hark.key'))).toBe(ws.key);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    await shot('overview');
  });

  test('when "fading women in Austin" is built in the rule builder, then its live count is the API\'s', async () => {
    const api = await ws.api.post('/v1/segments/preview', { definition: FADING_WOMEN_IN_AUSTIN });
    expect(api.status).toBe(200);
    expect(api.body.count).toBe(3);

    await page.getByRole('link', { name: 'Segments' }).click();
    await page.getByRole('button', { name: 'New segment' }).click();
    await page.getByLabel('Segment name').fill('Fading women in Austin');
    await page.getByRole('button', { name: 'Root rule: add preset' }).click();
    await page.getByLabel('Rule 1: preset', { exact: true }).selectOption('fading');
    await page.getByRole('button', { name: 'Root rule: add condition' }).click();
    await page.getByLabel('Rule 2: field', { exact: true }).selectOption('gender');
    await page.getByLabel('Rule 2: operator', { exact: true }).selectOption('eq');
    await page.getByLabel('Rule 2: value', { exact: true }).fill('female');
    await page.getByRole('button', { name: 'Root rule: add condition' }).click();
    await page.getByLabel('Rule 3: field', { exact: true }).selectOption('city');
    await page.getByLabel('Rule 3: value', { exact: true }).fill('Austin');
    const edited = Date.now();
    await page.waitForFunction((n) => document.querySelector('[data-testid=preview-count]')?.textContent === String(n), api.body.count, { timeout: 10000 });
    process.stdout.write(`console: builder count shown ${Date.now() - edited} ms after the last edit (6 customers)\n`);
    await shot('segments-builder');

    // A rule the API refuses (422) is marked at the node it names, not only at the top.
    await page.getByLabel('Rule 3: field', { exact: true }).selectOption('age');
    await page.getByLabel('Rule 3: operator', { exact: true }).selectOption('topPercent').catch(() => undefined);
    await page.getByLabel('Rule 3: value', { exact: true }).fill('abc');
    await page.locator('.node.invalid[data-path="all.2"]').waitFor({ timeout: 10000 });
    await shot('segments-error');
    await page.getByLabel('Rule 3: field', { exact: true }).selectOption('city');
    await page.getByLabel('Rule 3: operator', { exact: true }).selectOption('eq');
    await page.getByLabel('Rule 3: value', { exact: true }).fill('Austin');
    await page.waitForFunction(() => !document.querySelector('.node.invalid') && document.querySelector('[data-testid=preview-count]')?.textContent === '3', undefined, { timeout: 10000 });

    await page.getByRole('button', { name: 'Save segment' }).click();
    await page.getByRole('cell', { name: 'Fading women in Austin', exact: true }).waitFor();
    const list = await ws.api.get('/v1/segments');
    const saved = list.body.data.find((s: { name: string }) => s.name === 'Fading women in Austin');
    expect(saved.definition).toEqual(FADING_WOMEN_IN_AUSTIN);
    await page.waitForFunction((id) => document.querySelector(`[data-testid="count-${id}"]`)?.textContent === '3', saved.id);

    // Explain: w4 is a fading woman, but in Dallas: in the preset and gender rules, not the city one.
    await page.getByLabel('Segment', { exact: true }).selectOption({ label: 'Fading women in Austin' });
    await page.getByLabel('Customer external id').fill('w4');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.getByTestId('explain').getByText('not in the segment').waitFor();
    const marks = await page.getByTestId('explain').locator('.node > .badge').allTextContents();
    // Root (all of) and the city rule fail; the preset (with its own rule tree) and gender hold.
    expect(marks[0]).toBe('not matched');
    expect(marks[marks.length - 1]).toBe('not matched');
    expect(marks.filter((m) => m === 'not matched')).toHaveLength(2);
    await shot('segments-explain');
  });

  test('when an email template is written, then its preview renders for a chosen customer', async () => {
    await page.getByRole('link', { name: 'Templates' }).click();
    await page.getByRole('button', { name: 'New email template' }).click();
    await page.getByLabel('Template name').fill('We miss you');
    await page.getByRole('button', { name: 'Create template' }).click();
    await page.getByLabel('Preview for customer (external id, optional)').fill('w1');
    const frame = page.frameLocator('iframe[title="Email preview"]');
    await frame.getByText('Hi W1').waitFor({ timeout: 30000 });
    await shot('templates');
  });

  test('when settings are saved in the form, then the API returns them', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('From email').fill('shop@example.com');
    await page.getByLabel('From name').fill('Console Shop');
    await page.getByLabel('Postal address (shown in every email)').fill('1 Main St, Austin TX');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const s = await ws.api.get('/v1/settings');
    expect(s.body).toMatchObject({ fromEmail: 'shop@example.com', fromName: 'Console Shop', postalAddress: '1 Main St, Austin TX' });
    await shot('settings');
  });

  test('when an email campaign is created and sent from the console, then it reaches "sent", the mail arrives and results open', async () => {
    await page.getByRole('link', { name: 'Campaigns' }).click();
    await page.getByLabel('Campaign name').fill('Come back');
    const tpl = (await ws.api.get('/v1/templates')).body.data.find((t: { name: string }) => t.name === 'We miss you');
    await page.getByLabel('Template').selectOption(tpl.id);
    await page.getByRole('checkbox', { name: 'Fading women in Austin' }).first().check();
    await page.getByRole('button', { name: 'Create campaign' }).click();
    await page.getByRole('button', { name: 'Send now' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=campaign-status]')?.textContent === 'sent', undefined, { timeout: 30000 });
    await shot('campaign');
    await smtp.waitFor(3, 10000);
    expect(smtp.received.flatMap((m) => m.envelopeTo).sort()).toEqual(['w1@example.com', 'w2@example.com', 'w3@example.com']);
    await page.getByRole('link', { name: 'Results' }).last().click();
    await page.getByRole('img', { name: 'Sent by group' }).waitFor();
    await page.getByTestId('lift').waitFor();
    await shot('results');
  }, 60000);

  test('when the win-back wizard is walked through, then the automation exists with its steps and counts', async () => {
    await page.getByRole('link', { name: 'Automations' }).first().click();
    await page.getByLabel('1. Segment whose new members enter').selectOption({ label: 'Fading women in Austin' });
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('2. Email sent on entry').selectOption({ label: 'We miss you' });
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('3. Then wait (days)').fill('2');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Win back Austin');
    await page.getByRole('button', { name: 'Create automation' }).click();
    await page.getByRole('heading', { name: /Win back Austin/ }).waitFor();
    const list = await ws.api.get('/v1/automations');
    const a = list.body.data.find((x: { name: string }) => x.name === 'Win back Austin');
    expect(a).toMatchObject({ enabled: true, exitWhen: 'purchased', trigger: { type: 'segmentEntry' } });
    expect(a.steps).toEqual([expect.objectContaining({ type: 'send', channel: 'email' }), { type: 'wait', hours: 48 }]);
    await page.getByRole('row', { name: /1\. send email/ }).waitFor();
    await shot('automations');
  });

  test('when a CSV is picked on the Import page, then the mapping is guessed, editable, and the job shows progress and rejected lines', async () => {
    await page.getByRole('link', { name: 'Import', exact: true }).click();
    const file = [
      'InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country',
      '900001,85123A,WHITE HANGING HEART,6,2011-10-06 16:20:00,2.55,r-1,United Kingdom',
      '900002,71053,WHITE METAL LANTERN,2,2011-10-07 10:00:00,3.39,r-2,United Kingdom',
      'C900003,71053,WHITE METAL LANTERN,-1,2011-10-08 10:00:00,3.39,r-2,United Kingdom',
      '900001,22633,HAND WARMER,1,2011-10-06 16:20:00,1.85,r-1,United Kingdom',
    ].join('\n');
    await page.getByLabel('CSV file').setInputFiles({ name: 'retail.csv', mimeType: 'text/csv', buffer: Buffer.from(file) });
    const field = (col: string) => page.getByLabel(`Field for column ${col}`);
    await field('InvoiceNo').waitFor();
    expect(await field('InvoiceNo').inputValue()).toBe('orderId');
    expect(await field('StockCode').inputValue()).toBe('sku');
    expect(await field('InvoiceDate').inputValue()).toBe('occurredAt');
    expect(await field('CustomerID').inputValue()).toBe('customerExternalId');
    expect(await field('Country').inputValue()).toBe('');
    await field('Description').selectOption('category'); // edited by hand
    await page.getByLabel('Date format').fill('yyyy-MM-dd HH:mm:ss');
    await page.getByLabel('Time zone').fill('Europe/London');
    await page.getByRole('button', { name: 'Start import' }).click();
    await page.locator('[data-testid=import-job][data-status=done]').waitFor({ timeout: 30000 });
    expect(await page.getByTestId('import-counts').textContent()).toMatch(/4 rows read · 2 accepted · 0 duplicates · 1 rejected/);
    expect(await page.getByTestId('import-errors').locator('tbody tr').allTextContents()).toEqual([expect.stringMatching(/^4.*quantity/)]);
    expect(await page.locator('progress').first().getAttribute('value')).toBe('1');
    const r1 = await ws.api.get('/v1/customers/r-1');
    expect(r1.body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 17.15, topCategory: 'WHITE HANGING HEART' });
    await shot('import');
  }, 60000);

  test('when a customer is searched and opened, then the profile shows stats, predictions, lead score, live segments and the timeline', async () => {
    await page.getByRole('link', { name: 'Customers', exact: true }).click();
    await page.getByLabel('Search customers').fill('W1');
    // The search runs as typed (debounced): wait for the list to narrow to the one match.
    await page.waitForFunction(() => document.querySelector('[data-testid=customer-results] tbody tr:nth-child(2)') === null && document.querySelector('[data-testid=customer-results] tbody tr') !== null, undefined, { timeout: 10000 });
    expect(await page.getByTestId('customer-results').locator('tbody tr').allTextContents()).toEqual([expect.stringMatching(/^w1W1w1@example\.com/)]);
    await page.getByTestId('customer-results').getByRole('link', { name: 'w1', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'W1' }).waitFor();
    await page.getByTestId('customer-stats').getByText('120.00').waitFor();
    expect(await page.getByTestId('lead-score').textContent()).toBe('0');
    await page.getByTestId('customer-predictions').getByText('Churn risk (90 days)').waitFor();
    await page.getByTestId('customer-segments').getByRole('link', { name: 'Fading women in Austin' }).waitFor();
    // The campaign's email to w1 and w1's three purchases, newest first.
    await page.locator('[data-testid=timeline] tr[data-type=message]').first().waitFor();
    const types = await page.locator('[data-testid=timeline] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
    expect(types.filter((t) => t === 'purchase')).toHaveLength(3);
    expect(types[0]).not.toBe('purchase'); // the message is newer than every purchase
    expect(await page.locator('[data-testid=timeline] tr[data-type=message]').first().textContent()).toMatch(/Email (sent|delivered|queued|sending)/);
    await shot('customer-profile');
  }, 60000);

  test('when the other pages are opened at tablet width, then they render without errors or policy violations', async () => {
    await page.setViewportSize({ width: 800, height: 1000 });
    for (const name of ['Automations', 'Results', 'Customers', 'Import', 'Overview']) {
      await page.getByRole('link', { name, exact: true }).first().click();
      await page.getByRole('heading', { level: 1, name }).waitFor();
      await shot(name.toLowerCase() + '-tablet');
    }
    await page.getByRole('link', { name: 'Automations' }).first().click();
    await page.getByRole('heading', { name: /Win-back wizard/ }).waitFor();
    expect(problems.filter((p) => /Content Security Policy|Refused/i.test(p))).toEqual([]);
  });
});
