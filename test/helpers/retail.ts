import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';

/** Online Retail invoices (cancellations and rows without a customer skipped, net-negative invoices dropped), one purchase each. */
export function retailPurchases(): Array<{ orderId: string; customer: { externalId: string }; occurredAt: string; total: number }> {
  const rows = parse(readFileSync(`${__dirname}/../fixtures/data/online-retail-sample.csv`), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const byInvoice = new Map<string, { customer: string; at: string; cents: number }>();
  for (const r of rows) {
    if (!r.CustomerID || r.InvoiceNo!.startsWith('C')) continue;
    const inv = byInvoice.get(r.InvoiceNo!) ?? { customer: String(Math.round(Number(r.CustomerID))), at: r.InvoiceDate!.replace(' ', 'T') + 'Z', cents: 0 };
    inv.cents += Math.round(Number(r.Quantity) * Number(r.UnitPrice) * 100);
    byInvoice.set(r.InvoiceNo!, inv);
  }
  return [...byInvoice.entries()].filter(([, v]) => v.cents >= 0).map(([no, v]) => ({ orderId: no, customer: { externalId: v.customer }, occurredAt: new Date(v.at).toISOString(), total: v.cents / 100 }));
}
