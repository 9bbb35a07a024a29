import { z } from 'zod';
import { customerRef } from '../customers/schema';
import { zCurrency, zIsoDateTime, zMoney } from '../normalize';

export const purchaseItem = z.strictObject({
  sku: z.string().min(1).max(100),
  name: z.string().max(500).optional(),
  category: z.string().max(200).optional(),
  brand: z.string().max(200).optional(),
  quantity: z.number().int().positive('must be a positive whole number').max(1_000_000),
  unitPrice: zMoney,
});

export const purchaseBody = z.strictObject({
  orderId: z.string().min(1).max(200),
  customer: customerRef,
  occurredAt: zIsoDateTime,
  total: zMoney,
  currency: zCurrency.optional(),
  storeId: z.string().max(200).optional(),
  channel: z.enum(['pos', 'online']).optional(),
  items: z.array(purchaseItem).max(500).optional(),
});
export type PurchaseInput = z.infer<typeof purchaseBody>;

export const batchPurchasesBody = z.strictObject({
  purchases: z.array(z.unknown()).min(1).max(1000, 'at most 1000 purchases per batch'),
});

export const refundBody = z.strictObject({
  amount: zMoney.refine((n) => n > 0, 'must be greater than 0'),
  /** Optional: names the refund so that a retried request refunds once. */
  refundId: z.string().min(1).max(200).optional(),
});
