import { generateKeyPairSync } from 'node:crypto';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { startTwilioStandin, TwilioStandin } from './helpers/twilio-standin';
import { createSmtpChannel } from '../src/channels/smtp';
import { createTwilioChannel } from '../src/channels/twilio';
import { twilioHttpClientKind } from '../src/channels/twilio-http';
import { ANSWER_LOST, ChannelError, OutgoingEmail } from '../src/channels/types';

const email = (over: Partial<OutgoingEmail> = {}): OutgoingEmail => ({
  messageId: '101',
  to: 'ann@example.com',
  from: 'Acme <news@acme.example>',
  replyTo: 'help@acme.example',
  subject: 'Summer sale: 20% off',
  html: '<html><body><p>Hello <b>Ann</b></p><a href="https://acme.example/u/tok">Unsubscribe</a></body></html>',
  text: 'Hello Ann\n\nUnsubscribe: https://acme.example/u/tok',
  headers: { 'List-Unsubscribe': '<https://acme.example/u/tok>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  ...over,
});

async function rejection(p: Promise<unknown>): Promise<ChannelError> {
  try {
    await p;
  } catch (err) {
    return err as ChannelError;
  }
  throw new Error('expected a rejection');
}

describe('SMTP channel', () => {
  let peer: SmtpPeer;
  beforeAll(async () => {
    peer = await startSmtpPeer({ rejectRecipients: /^gone@/, tempFailRecipients: /^busy@/ });
  });
  afterAll(async () => {
    await peer.close();
  });

  test('when an email is sent, then the SMTP server receives it with RFC 8058 headers and both parts', async () => {
    const ch = createSmtpChannel({ url: peer.url });
    const before = peer.count();
    const res = await ch.send(email());
    await ch.close();
    expect(res.providerId).toBe('<hark.101@acme.example>');
    expect(peer.count()).toBe(before + 1);
    const mail = (await peer.parseAll())[before]!;
    expect(peer.received[before]!.envelopeTo).toEqual(['ann@example.com']);
    expect(mail.subject).toBe('Summer sale: 20% off');
    expect(mail.from?.value[0]).toMatchObject({ address: 'news@acme.example', name: 'Acme' });
    const line = (key: string) => mail.headerLines.find((h) => h.key === key)?.line;
    expect(line('list-unsubscribe-post')).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    expect(line('list-unsubscribe')).toBe('List-Unsubscribe: <https://acme.example/u/tok>');
    expect(mail.html).toContain('Hello <b>Ann</b>');
    expect(mail.text).toContain('Unsubscribe: https://acme.example/u/tok');
    expect(mail.messageId).toBe('<hark.101@acme.example>');
  });

  test('when an email has non-ASCII names, subject and bodies, long lines and a dot-led line, then the server parses back exactly what was sent', async () => {
    const ch = createSmtpChannel({ url: peer.url });
    const before = peer.count();
    const longUrl = `https://acme.example/u/${'t'.repeat(160)}`;
    const m = email({
      messageId: '103',
      from: 'Äcme Bücher <news@acme.example>',
      replyTo: '"Help, Desk" <help@acme.example>',
      subject: 'Sommer-Sale: 20 % Rabatt – jetzt ✓ '.repeat(4).trim(),
      html: `<html><body><p>Grüße, Ann ✓</p><a href="${longUrl}">Abmelden</a></body></html>`,
      text: `Grüße, Ann\n.a line led by a dot\n\nAbmelden: ${longUrl}`,
      headers: { 'List-Unsubscribe': `<${longUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    });
    await ch.send(m);
    const plain = email({ messageId: '104', text: 'Hello Ann\n.\n..two dots\nbye' });
    await ch.send(plain);
    await ch.close();
    const [mail, mail2] = (await peer.parseAll()).slice(before);
    expect(mail!.subject).toBe(m.subject);
    expect(mail!.from?.value[0]).toMatchObject({ address: 'news@acme.example', name: 'Äcme Bücher' });
    expect(mail!.replyTo?.value[0]).toMatchObject({ address: 'help@acme.example', name: 'Help, Desk' });
    expect(mail!.to && !Array.isArray(mail!.to) ? mail!.to.value[0]!.address : undefined).toBe('ann@example.com');
    expect(mail!.html).toBe(m.html);
    expect(mail!.text).toBe(m.text);
    expect(mail!.messageId).toBe('<hark.103@acme.example>');
    expect(mail!.date).toBeInstanceOf(Date);
    expect(mail!.headers.get('list')).toMatchObject({ unsubscribe: { url: longUrl }, 'unsubscribe-post': { name: 'List-Unsubscribe=One-Click' } });
    // 7-bit text of short lines goes as it is: dot-stuffing is the SMTP connection's, undone by the server.
    expect(peer.received[before + 1]!.raw!.toString()).toContain('Content-Transfer-Encoding: 7bit');
    expect(mail2!.text).toBe('Hello Ann\n.\n..two dots\nbye');
  });

  test('when the recipient address is not plain ASCII, then nodemailer composes it as before', async () => {
    const ch = createSmtpChannel({ url: peer.url });
    const before = peer.count();
    const res = await ch.send(email({ messageId: '105', to: 'ann@bücher.example' }));
    await ch.close();
    expect(res.providerId).toBe('<hark.105@acme.example>');
    expect(peer.received[before]!.envelopeTo).toEqual(['ann@bücher.example']);
    const [mail] = (await peer.parseAll()).slice(before);
    expect(peer.received[before]!.raw!.toString()).toMatch(/^Content-Type: multipart\/alternative;\r\n boundary="--_NmP-/m);
    expect(mail!.text).toContain('Unsubscribe: https://acme.example/u/tok');
  });

  test('when DKIM is configured, then the message carries a DKIM-Signature for the domain', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const ch = createSmtpChannel({ url: peer.url, dkim: { domainName: 'acme.example', keySelector: 'hark', privateKey } });
    const before = peer.count();
    await ch.send(email({ messageId: '102' }));
    await ch.close();
    const raw = peer.received[before]!.raw!.toString('utf8');
    expect(raw).toMatch(/^DKIM-Signature: .*d=acme\.example.*s=hark/ms);
  });

  test('when the server answers 550 for the recipient, then a permanent error that suppresses the address', async () => {
    const ch = createSmtpChannel({ url: peer.url });
    const err = await rejection(ch.send(email({ to: 'gone@example.com' })));
    await ch.close();
    expect(err).toBeInstanceOf(ChannelError);
    expect(err).toMatchObject({ permanent: true, suppress: true, code: '550' });
    expect(err.message).not.toContain('gone@example.com');
  });

  test('when the server answers 451, then a transient error', async () => {
    const ch = createSmtpChannel({ url: peer.url });
    const err = await rejection(ch.send(email({ to: 'busy@example.com' })));
    await ch.close();
    expect(err).toMatchObject({ permanent: false, suppress: false, code: '451' });
  });

  test('when nothing listens on the SMTP port, then a transient connection error', async () => {
    const closed = await startSmtpPeer();
    await closed.close();
    const ch = createSmtpChannel({ url: closed.url, pool: false });
    const err = await rejection(ch.send(email()));
    await ch.close();
    expect(err).toMatchObject({ permanent: false });
  });
});

describe('Twilio channel', () => {
  let standin: TwilioStandin;
  const opts = () => ({ accountSid: 'AC0123456789abcdef0123456789abcdef', authToken: 'secret-token', apiUrl: standin.url });
  beforeAll(async () => {
    standin = await startTwilioStandin({
      errorFor: {
        '+15005550001': { code: 21211, status: 400 },
        '+15005550002': { code: 21610, status: 400 },
        '+15005550003': { code: 20429, status: 429 },
        '+15005550004': { code: 30001, status: 400 },
      },
    });
  });
  afterAll(async () => {
    await standin.close();
  });

  test('when an SMS is sent through the twilio library, then the stand-in receives it and its sid is the provider id', async () => {
    const ch = createTwilioChannel(opts());
    const res = await ch.send({ messageId: '7', to: '+15125550100', from: '+15125550199', body: 'Hi Ann ✓\nReply STOP to opt out', statusCallback: 'https://hark.example/webhooks/twilio/status?m=7' });
    await ch.close();
    const got = standin.messages.find((m) => m.sid === res.providerId);
    expect(got).toMatchObject({ accountSid: opts().accountSid, To: '+15125550100', From: '+15125550199', Body: 'Hi Ann ✓\nReply STOP to opt out', StatusCallback: 'https://hark.example/webhooks/twilio/status?m=7' });
  });

  test.each([
    ['+15005550001', { permanent: true, suppress: true, code: '21211' }],
    ['+15005550002', { permanent: true, suppress: true, code: '21610' }],
    ['+15005550003', { permanent: false, suppress: false }],
    ['+15005550004', { permanent: true, suppress: false, code: '30001' }],
  ])('when Twilio refuses %s, then the error is classified %o', async (to, expected) => {
    const ch = createTwilioChannel(opts());
    const err = await rejection(ch.send({ messageId: '8', to, from: '+15125550199', body: 'x' }));
    await ch.close();
    expect(err).toBeInstanceOf(ChannelError);
    expect(err).toMatchObject(expected);
  });

  test('when the API answers 404 (wrong TWILIO_API_URL path), then a permanent error', async () => {
    const bad = createTwilioChannel({ ...opts(), apiUrl: `${standin.url}/nowhere` });
    const err = await rejection(bad.send({ messageId: '9', to: '+15125550100', from: '+15125550199', body: 'x' }));
    await bad.close();
    expect(err).toBeInstanceOf(ChannelError);
    expect(err).toMatchObject({ permanent: true, suppress: false });
  });

  test("when the library's own client carries the requests (a proxy or CA bundle is configured), then sends and refusals behave the same", async () => {
    const ch = createTwilioChannel({ ...opts(), httpClient: 'library' });
    const res = await ch.send({ messageId: '13', to: '+15125550101', from: '+15125550199', body: 'Hi via axios', statusCallback: 'https://hark.example/webhooks/twilio/status' });
    const err = await rejection(ch.send({ messageId: '14', to: '+15005550002', from: '+15125550199', body: 'x' }));
    await ch.close();
    expect(standin.messages.find((m) => m.sid === res.providerId)).toMatchObject({ To: '+15125550101', Body: 'Hi via axios', StatusCallback: 'https://hark.example/webhooks/twilio/status' });
    expect(err).toMatchObject({ permanent: true, suppress: true, code: '21610' });
  });

  test.each([
    [{}, 'hark'],
    [{ HTTP_PROXY: 'http://proxy.internal:3128' }, 'library'],
    [{ TWILIO_CA_BUNDLE: '/etc/ssl/twilio.pem' }, 'library'],
  ])('when the environment is %o, then the %s client carries the requests', (env, kind) => {
    expect(twilioHttpClientKind(env)).toBe(kind);
  });

  test('when the request was sent and no answer comes in time, then the error says it may have left (ANSWER_LOST, never retried)', async () => {
    const slow = await startTwilioStandin({ holdFor: ['+15005550009'] });
    const ch = createTwilioChannel({ ...opts(), apiUrl: slow.url, timeoutMs: 300 });
    const err = await rejection(ch.send({ messageId: '11', to: '+15005550009', from: '+15125550199', body: 'x' }));
    await ch.close();
    await slow.close();
    expect(slow.held).toEqual(['+15005550009']);
    expect(err).toMatchObject({ permanent: true, suppress: false, code: ANSWER_LOST });
  });

  test('when the server cuts the connection after reading the request, then ANSWER_LOST, not a retryable error', async () => {
    const { createServer } = await import('node:http');
    const cutter = createServer((req) => req.on('data', () => undefined).on('end', () => req.socket.destroy()));
    await new Promise<void>((r) => cutter.listen(0, '127.0.0.1', () => r()));
    const ch = createTwilioChannel({ ...opts(), apiUrl: `http://127.0.0.1:${(cutter.address() as { port: number }).port}` });
    const err = await rejection(ch.send({ messageId: '12', to: '+15125550100', from: '+15125550199', body: 'x' }));
    await ch.close();
    await new Promise((r) => cutter.close(r));
    expect(err).toMatchObject({ permanent: true, code: ANSWER_LOST });
  });

  test('when nothing listens at TWILIO_API_URL, then a transient network error', async () => {
    const down = await startTwilioStandin();
    const url = down.url;
    await down.close();
    const ch = createTwilioChannel({ ...opts(), apiUrl: url });
    const err = await rejection(ch.send({ messageId: '10', to: '+15125550100', from: '+15125550199', body: 'x' }));
    await ch.close();
    expect(err).toMatchObject({ permanent: false });
  });
});
