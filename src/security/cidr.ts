// IP addresses as bytes and CIDR blocks as (bytes, prefix length), for `ipBlocks` and `source.ip` matching.
import { ipFamily } from '../core/ip.ts';

export interface CidrBlock {
  /** The network address, 4 bytes (IPv4) or 16 (IPv6). */
  bytes: Uint8Array;
  bits: number;
  /** As written in the policy, for explanations. */
  text: string;
}

/**
 * The address as 4 or 16 bytes; undefined when it is not an address. IPv4-mapped IPv6 addresses
 * (`::ffff:10.0.0.1`, what a dual-stack Node socket reports for an IPv4 peer) become the IPv4
 * address, so an IPv4 block cannot be sidestepped by the socket's address family.
 */
export function ipBytes(address: string): Uint8Array | undefined {
  const family = ipFamily(address);
  if (family === 4) return new Uint8Array(address.split('.').map(Number));
  if (family !== 6) return undefined;
  const v6 = parseV6(address);
  const mapped = v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

// Assumes ipFamily() already accepted the text.
function parseV6(text: string): Uint8Array {
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tailV4 = text.slice(lastColon + 1).split('.').map(Number);
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tailV4.length === 4) out.set(tailV4, 12);
  return out;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a plain address (a one-address block); undefined when invalid. */
export function parseCidr(text: string): CidrBlock | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  if (address.includes('%')) return undefined;
  const family = ipFamily(address);
  if (family === 0) return undefined;
  let bytes = family === 4 ? new Uint8Array(address.split('.').map(Number)) : parseV6(address);
  const max = bytes.length * 8;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) return undefined;
    bits = Number(b);
  }
  // An IPv4-mapped IPv6 block covers IPv4 addresses, which ipBytes() reports as 4 bytes.
  if (family === 6 && bits >= 96 && bytes.slice(0, 10).every((x) => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    bytes = bytes.slice(12);
    bits -= 96;
  }
  return { bytes, bits, text };
}

export function cidrContains(block: CidrBlock, address: Uint8Array): boolean {
  if (address.length !== block.bytes.length) return false;
  let left = block.bits;
  for (let i = 0; left > 0; i++, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if ((address[i]! & mask) !== (block.bytes[i]! & mask)) return false;
  }
  return true;
}
