/** The fields of each import kind (API.md "Imports") and the guess of a file's mapping from its header. */
export type Kind = 'customers' | 'purchases';

export const FIELDS: Record<Kind, string[]> = {
  customers: ['externalId', 'email', 'phone', 'firstName', 'lastName', 'birthDate', 'gender', 'city', 'region', 'country', 'postalCode', 'timezone', 'emailConsent', 'smsConsent'],
  purchases: ['orderId', 'customerExternalId', 'customerEmail', 'customerPhone', 'occurredAt', 'total', 'currency', 'storeId', 'channel', 'sku', 'name', 'category', 'brand', 'quantity', 'unitPrice'],
};

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Names point-of-sale and shop exports commonly use, squashed, for each field. */
const SYNONYMS: Record<Kind, Record<string, string[]>> = {
  customers: {
    externalId: ['customerid', 'id', 'customerno', 'customernumber', 'clientid'], email: ['emailaddress', 'mail'], phone: ['phonenumber', 'mobile', 'tel', 'telephone'],
    firstName: ['firstname', 'givenname', 'forename'], lastName: ['lastname', 'surname', 'familyname'], postalCode: ['zip', 'zipcode', 'postcode'], region: ['state', 'province', 'county'],
    birthDate: ['dob', 'dateofbirth', 'birthday'],
  },
  purchases: {
    orderId: ['invoiceno', 'invoice', 'invoiceid', 'orderno', 'ordernumber', 'transactionid', 'receiptno'], customerExternalId: ['customerid', 'customerno', 'clientid', 'customer'],
    customerEmail: ['email', 'emailaddress'], customerPhone: ['phone', 'mobile'], occurredAt: ['invoicedate', 'date', 'orderdate', 'createdat', 'timestamp', 'datetime'],
    sku: ['stockcode', 'productid', 'productcode', 'itemcode', 'article'], name: ['description', 'productname', 'itemname', 'title'], quantity: ['qty', 'units'],
    unitPrice: ['price', 'unitcost', 'itemprice'], storeId: ['store', 'shop', 'location'], total: ['ordertotal', 'amount'],
  },
};

/** For each column of the header, the field it most likely fills ('' = ignored); a field is used once. */
export function guessMapping(kind: Kind, header: string[]): string[] {
  const used = new Set<string>();
  return header.map((col) => {
    const s = squash(col);
    const exact = FIELDS[kind].find((f) => squash(f) === s && !used.has(f));
    const syn = exact ?? Object.entries(SYNONYMS[kind]).find(([f, names]) => names.includes(s) && !used.has(f))?.[0];
    if (syn) used.add(syn);
    return syn ?? '';
  });
}
