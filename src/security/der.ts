// Just enough ASN.1 DER for X.509 certificates and PKCS#10 requests: a strict reader and a writer.
//
// The reader is used on untrusted input (CSRs), so it accepts DER only: definite minimal lengths,
// single-byte tags, and every length checked against what is left. It never recurses on its own:
// callers walk the fixed shape they expect, one level at a time.

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag number n: constructed (`[n] EXPLICIT`, or IMPLICIT of a constructed type) or primitive. */
export const context = (n: number, constructed = true) => (constructed ? 0xa0 : 0x80) | n;

export class DerError extends Error {}

/** One decoded element. `raw` is the whole TLV (for signatures over exact bytes), `content` its value. */
export interface Node {
  tag: number;
  raw: Uint8Array;
  content: Uint8Array;
}

/** Reads exactly one element spanning all of `bytes`. */
export function readOne(bytes: Uint8Array): Node {
  const [node, end] = readAt(bytes, 0);
  if (end !== bytes.length) throw new DerError('trailing bytes after DER element');
  return node;
}

/** The elements inside a constructed element (SEQUENCE, SET, [n] EXPLICIT). */
export function children(node: Node): Node[] {
  if ((node.tag & 0x20) === 0) throw new DerError(`element with tag 0x${node.tag.toString(16)} is not constructed`);
  const out: Node[] = [];
  let at = 0;
  while (at < node.content.length) {
    const [child, end] = readAt(node.content, at);
    out.push(child);
    at = end;
  }
  return out;
}

function readAt(bytes: Uint8Array, start: number): [Node, number] {
  if (start + 2 > bytes.length) throw new DerError('truncated DER element');
  const tag = bytes[start]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let at = start + 1;
  const first = bytes[at++]!;
  let length = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('DER length too large');
    if (at + n > bytes.length) throw new DerError('truncated DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[at++]!;
    if (length < 0x80 || bytes[at - n] === 0) throw new DerError('non-minimal DER length');
  }
  const end = at + length;
  if (end > bytes.length) throw new DerError('DER element longer than its container');
  return [{ tag, raw: bytes.subarray(start, end), content: bytes.subarray(at, end) }, end];
}

export function expectTag(node: Node | undefined, tag: number, what: string): Node {
  if (!node || node.tag !== tag) throw new DerError(`expected ${what}`);
  return node;
}

export function readOid(node: Node): string {
  expectTag(node, Tag.OID, 'an OBJECT IDENTIFIER');
  const b = node.content;
  if (b.length === 0 || b.length > 64) throw new DerError('bad OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < b.length; i++) {
    if (value === 0 && b[i] === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER arc');
    value = value * 128 + (b[i]! & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OBJECT IDENTIFIER arc too large');
    if ((b[i]! & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    } else if (i === b.length - 1) throw new DerError('truncated OBJECT IDENTIFIER');
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

export function readSmallInteger(node: Node): number {
  expectTag(node, Tag.INTEGER, 'an INTEGER');
  if (node.content.length === 0 || node.content.length > 4) throw new DerError('INTEGER out of range');
  let v = 0;
  for (const b of node.content) v = v * 256 + b;
  return v;
}

export function readBitString(node: Node): Uint8Array {
  expectTag(node, Tag.BIT_STRING, 'a BIT STRING');
  if (node.content.length === 0 || node.content[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return node.content.subarray(1);
}

// ---- Writer ----

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const head = [tag, ...lengthBytes(length)];
  const out = new Uint8Array(head.length + length);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const seq = (...parts: Uint8Array[]) => tlv(Tag.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]) => tlv(Tag.SET, ...parts);
export const nullValue = () => tlv(Tag.NULL);
export const octetString = (b: Uint8Array) => tlv(Tag.OCTET_STRING, b);
export const bitString = (b: Uint8Array) => tlv(Tag.BIT_STRING, Uint8Array.of(0), b);
export const boolean = (v: boolean) => tlv(Tag.BOOLEAN, Uint8Array.of(v ? 0xff : 0));
export const utf8 = (s: string) => tlv(Tag.UTF8_STRING, new TextEncoder().encode(s));
export const ia5 = (s: string) => tlv(Tag.IA5_STRING, new TextEncoder().encode(s));

/** A non-negative INTEGER from big-endian bytes (leading zeros trimmed, a 0x00 added when the top bit is set). */
export function unsignedInteger(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const body = bytes.subarray(i);
  return body[0]! & 0x80 ? tlv(Tag.INTEGER, Uint8Array.of(0), body) : tlv(Tag.INTEGER, body);
}

export const smallInteger = (n: number) => unsignedInteger(Uint8Array.of((n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff));

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const body: number[] = [];
  const push = (v: number) => {
    const chunk = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    body.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(Tag.OID, Uint8Array.from(body));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(Tag.UTC_TIME, new TextEncoder().encode(digits.slice(2))) : tlv(Tag.GENERALIZED_TIME, new TextEncoder().encode(digits));
}

// ---- PEM ----

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/** The DER of every PEM block labelled one of `labels`, in order (other blocks are skipped). */
export function pemBlocks(text: string, labels: readonly string[], maxBytes = 64 * 1024): Uint8Array[] {
  if (text.length > maxBytes * 2) throw new DerError('PEM input too large');
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(/-----BEGIN ([A-Z0-9 ]{1,40})-----([^-]*)-----END ([A-Z0-9 ]{1,40})-----/g)) {
    if (m[1] !== m[3]) throw new DerError('PEM BEGIN and END labels differ');
    if (!labels.includes(m[1]!)) continue;
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new DerError('PEM body is not base64');
    const der = new Uint8Array(Buffer.from(body, 'base64'));
    if (der.length === 0 || der.length > maxBytes) throw new DerError('PEM body empty or too large');
    out.push(der);
  }
  return out;
}

/** The DER inside the first PEM block labelled one of `labels`; throws when there is none. */
export function fromPem(text: string, labels: readonly string[], maxBytes = 64 * 1024): Uint8Array {
  const [first] = pemBlocks(text, labels, maxBytes);
  if (!first) throw new DerError(`expected a PEM block labelled ${labels.join(' or ')}`);
  return first;
}
