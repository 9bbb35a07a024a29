import { centsToString, moneyNumber, parseJsonKeepingIds, toCents } from '../src/connectors/kit';
import { shopify } from '../src/connectors/shopify';
import { woocommerce } from '../src/connectors/woocommerce';

describe('connector kit', () => {
  test('when amounts come as decimal strings or numbers, then cents are exact and half a cent rounds away from zero', () => {
    expect(['199.00', '0.1', '-5.5', '12', '0.005', '0.004', '-0.015', '90071992547409.93'].map((s) => toCents(s))).toEqual([19900n, 10n, -550n, 1200n, 1n, 0n, -2n, 9007199254740993n]);
    expect(toCents(12.3)).toBe(1230n);
    expect(() => toCents('1e3')).toThrow('is not an amount');
    expect(() => toCents(null)).toThrow('is not an amount');
    expect(centsToString(-550n)).toBe('-5.50');
    // 0.1 + 0.2 in floats is 0.30000000000000004; summed as cents it is 0.3.
    expect(moneyNumber(centsToString(toCents('0.1') + toCents('0.2')))).toBe(0.3);
  });

  test('when a payload holds integers beyond 2^53, then they come back as their exact digits, and strings and small numbers are untouched', () => {
    expect(parseJsonKeepingIds('{"id":820982911946154508,"n":[12345678901234567891, 5, 1.5e300, -9007199254740993],"s":"x 12345678901234567890 \\" 98765432109876543210","f":1234567890123456.5}')).toEqual({
      id: '820982911946154508', n: ['12345678901234567891', 5, 1.5e300, '-9007199254740993'], s: 'x 12345678901234567890 " 98765432109876543210', f: 1234567890123456.5,
    });
  });
});

describe('adapters', () => {
  test('when a Shopify refund names an order id beyond 2^53 (no graphql id for the order), then the order id is exact', () => {
    const body = parseJsonKeepingIds('{"id": 929361463, "order_id": 820982911946154508, "transactions": [{"kind": "refund", "amount": "0.10"}, {"kind": "refund", "amount": "0.20"}, {"kind": "capture", "amount": "9.00"}]}') as Record<string, unknown>;
    expect(shopify.map('refunds/create', body)).toEqual([{ kind: 'refund', orderId: 'shopify:820982911946154508', refundId: 'shopify:929361463', amount: '0.30' }]);
  });

  test('when a WooCommerce order is on hold, then nothing is written and the reason says why', () => {
    expect(woocommerce.map('order.updated', { id: 5, status: 'on-hold', total: '1.00' })).toEqual([{ kind: 'skip', reason: 'order 5 is on-hold: stored once processing or completed' }]);
  });

  test('when a WooCommerce ping comes, then only the unsigned form body webhook_id=<n> is one', () => {
    expect(woocommerce.isPing!(Buffer.from('webhook_id=12'), {})).toBe(true);
    expect(woocommerce.isPing!(Buffer.from('webhook_id=12&x=1'), {})).toBe(false);
    expect(woocommerce.isPing!(Buffer.from('webhook_id=12'), { 'x-wc-webhook-signature': 'x' })).toBe(false);
  });
});
