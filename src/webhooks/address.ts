import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { AppError } from '../errors';

/**
 * Outgoing webhooks may only reach public addresses: a workspace admin must not be able to make
 * hark's network position (the compose network's postgres and redis, the cloud metadata service
 * at 169.254.169.254, the operator's LAN) answer through the deliveries list.
 *
 * An address is public when ipaddr.js ranks it plain `unicast`: that refuses loopback, RFC 1918,
 * link-local (169.254/16, fe80::/10), CGNAT (100.64/10), unspecified, broadcast, multicast, the
 * reserved and documentation blocks, IPv6 unique-local (fc00::/7), and the IPv6 forms that carry
 * an IPv4 address (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4, Teredo); an IPv4-mapped
 * address is judged as the IPv4 address it maps.
 */
export function isPublicAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  let addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return addr.range() === 'unicast';
}

export class AddressRefused extends Error {
  readonly code = 'EADDRREFUSED';
}

const bare = (hostname: string) => hostname.replace(/^\[|\]$/g, '');

function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));
}

/**
 * A `lookup` for http.request: resolves the host, refuses it when any address is not public
 * (a name with one private address among public ones is still a way in), and hands the checked
 * address to the socket, so the connection goes where the check looked: DNS cannot answer the
 * check with a public address and the connection with a private one (rebinding).
 */
export function pinnedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: (...args: unknown[]) => void) => {
    resolveAll(hostname).then(
      (addrs) => {
        if (!addrs.length) return callback(new AddressRefused('no address'));
        if (!allowPrivate && addrs.some((a) => !isPublicAddress(a.address))) return callback(new AddressRefused('address not allowed'));
        if (typeof options === 'object' && options.all) return callback(null, addrs);
        callback(null, addrs[0]!.address, addrs[0]!.family);
      },
      (err: unknown) => callback(err),
    );
  };
}

/** The URL's host when it is an IP literal (no lookup happens for those), else null. */
export function literalHost(url: URL): string | null {
  const h = bare(url.hostname);
  return isIP(h) ? h : null;
}

/**
 * At creation (and on a URL change): 422 unless the host is, or resolves only to, public
 * addresses. A host that does not resolve is refused too: hark cannot tell where it points.
 */
export async function checkWebhookUrl(raw: string, allowPrivate: boolean, path = 'url'): Promise<void> {
  if (allowPrivate) return;
  const url = new URL(raw);
  const refuse = (message: string) => new AppError('unprocessable', 'webhook URL must resolve to a public address', [{ path, message }]);
  const literal = literalHost(url);
  if (literal) {
    if (!isPublicAddress(literal)) throw refuse('loopback, private, link-local and metadata addresses are not allowed');
    return;
  }
  let addrs: LookupAddress[];
  try {
    addrs = await resolveAll(bare(url.hostname));
  } catch {
    throw refuse('the host does not resolve');
  }
  if (!addrs.length || addrs.some((a) => !isPublicAddress(a.address))) throw refuse('the host resolves to a loopback, private, link-local or metadata address');
}
