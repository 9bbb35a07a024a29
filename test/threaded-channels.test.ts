import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { startTwilioStandin, TwilioStandin } from './helpers/twilio-standin';
import { createThreadedChannels, SENDER_LOST } from '../src/channels/threaded';
import { ChannelError } from '../src/channels/types';

/** The dispatch worker's channels: provider calls in a sender thread, same contract as the direct ones. */
describe('threaded channels', () => {
  let peer: SmtpPeer;
  let standin: TwilioStandin;
  const sid = 'AC00000000000000000000000000000000';
  beforeAll(async () => {
    peer = await startSmtpPeer({ rejectRecipients: /^gone@/ });
    standin = await startTwilioStandin({ errorFor: { '+15005550002': { code: 21610, status: 400 } }, holdFor: ['+15005550009'] });
  });
  afterAll(async () => {
    await peer.close();
    await standin.close();
  });
  const channels = () => createThreadedChannels({ smtp: { url: peer.url }, twilio: { accountSid: sid, authToken: 'token', apiUrl: standin.url } });
  const email = (to: string, id: string) => ({ messageId: id, to, from: 'Acme <news@acme.example>', subject: 'Sale', html: '<p>Hi</p>', text: 'Hi', headers: { 'List-Unsubscribe': '<https://acme.example/u/t>' } });

  test('when an email and an SMS are sent through the thread, then the peers receive them and the provider ids come back', async () => {
    const ch = channels();
    const before = peer.count();
    const [mail, sms] = await Promise.all([ch.email.send(email('ann@example.com', '501')), ch.sms.send({ messageId: '502', to: '+15125550100', from: '+15125550199', body: 'Hi Ann' })]);
    await ch.email.close();
    expect(mail.providerId).toBe('<hark.501@acme.example>');
    expect(peer.count()).toBe(before + 1);
    expect(peer.received[before]!.envelopeTo).toEqual(['ann@example.com']);
    const got = standin.messages.find((m) => m.sid === sms.providerId);
    expect(got).toMatchObject({ To: '+15125550100', Body: 'Hi Ann' });
  });

  test('when the providers refuse, then the classified ChannelError crosses the thread intact', async () => {
    const ch = channels();
    const smtpErr = await ch.email.send(email('gone@example.com', '503')).catch((e: unknown) => e);
    const smsErr = await ch.sms.send({ messageId: '504', to: '+15005550002', from: '+15125550199', body: 'x' }).catch((e: unknown) => e);
    await ch.sms.close();
    expect(smtpErr).toBeInstanceOf(ChannelError);
    expect(smtpErr).toMatchObject({ permanent: true, suppress: true, code: '550' });
    expect(smsErr).toBeInstanceOf(ChannelError);
    expect(smsErr).toMatchObject({ permanent: true, suppress: true, code: '21610' });
  });

  test('when 40 SMS and a refused one are sent in one turn, then each send gets its own answer back', async () => {
    const ch = channels();
    const before = standin.count();
    // One turn of the event loop: the calls cross to the thread together, the answers come back together.
    const sends = Array.from({ length: 40 }, (_, i) => ch.sms.send({ messageId: String(600 + i), to: `+1512555${String(1000 + i)}`, from: '+15125550199', body: `Hi ${i}` }));
    const refused = ch.sms.send({ messageId: '699', to: '+15005550002', from: '+15125550199', body: 'x' }).catch((e: unknown) => e);
    const ids = await Promise.all(sends);
    await ch.sms.close();
    expect(standin.count()).toBe(before + 40);
    ids.forEach((r, i) => expect(standin.messages.find((m) => m.sid === r.providerId)).toMatchObject({ To: `+1512555${String(1000 + i)}`, Body: `Hi ${i}` }));
    expect(await refused).toMatchObject({ permanent: true, code: '21610' });
  });

  test('when the thread dies during a provider call, then that send fails as SENDER_LOST (never retried) and the next send starts a new thread', async () => {
    const ch = channels();
    const stuck = ch.sms.send({ messageId: '701', to: '+15005550009', from: '+15125550199', body: 'x' }).catch((e: unknown) => e);
    for (let i = 0; i < 100 && !standin.held.includes('+15005550009'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(standin.held).toContain('+15005550009');
    await ch.terminate();
    expect(await stuck).toMatchObject({ permanent: true, code: SENDER_LOST });
    const after = await ch.sms.send({ messageId: '702', to: '+15125550177', from: '+15125550199', body: 'again' });
    await ch.sms.close();
    expect(standin.messages.find((m) => m.sid === after.providerId)).toMatchObject({ To: '+15125550177', Body: 'again' });
  });

  test('when the channels are warmed, then the thread runs with its provider libraries loaded before any send, and sends go through it', async () => {
    const { readdirSync } = await import('node:fs');
    const threads = () => readdirSync('/proc/self/task').length;
    const ch = channels();
    const before = threads();
    await ch.warm();
    expect(threads()).toBeGreaterThan(before);
    const sent = await ch.sms.send({ messageId: '801', to: '+15125550188', from: '+15125550199', body: 'warm' });
    await ch.sms.close();
    expect(threads()).toBe(before);
    expect(standin.messages.find((m) => m.sid === sent.providerId)).toMatchObject({ To: '+15125550188', Body: 'warm' });
  });

  test('when the channels are closed, then a later send is refused as retryable and nothing is sent', async () => {
    const ch = channels();
    await ch.email.send(email('bob@example.com', '505'));
    await ch.email.close();
    const before = peer.count();
    const err = await ch.email.send(email('carl@example.com', '506')).catch((e: unknown) => e);
    expect(err).toMatchObject({ permanent: false, code: 'ECLOSED' });
    expect(peer.count()).toBe(before);
  });
});
