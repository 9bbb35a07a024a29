import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** Standard Webhooks secrets: "whsec_" + base64 of 24 random bytes (as Svix and the spec's examples). */
export const newSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The three Standard Webhooks headers. With more than one live secret (during a rotation's grace
 * period) the signature header carries one space-separated "v1,<sig>" per secret, so a receiver
 * holding either the old or the new secret accepts the message.
 */
export function signedHeaders(webhookId: string, at: Date, body: string, secrets: string[]): SignedHeaders {
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(webhookId, at, body)).join(' '),
  };
}
