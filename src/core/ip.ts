// IP address syntax without the network stack, so pure layers can check addresses.

const V4_OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** 4 for an IPv4 address, 6 for IPv6 (a `%zone` suffix allowed), 0 otherwise — as node:net's isIP. */
export function ipFamily(value: string): 0 | 4 | 6 {
  if (isIPv4(value)) return 4;
  if (isIPv6(value)) return 6;
  return 0;
}

function isIPv4(value: string): boolean {
  const parts = value.split('.');
  return parts.length === 4 && parts.every((p) => V4_OCTET.test(p));
}

function isIPv6(value: string): boolean {
  const pct = value.indexOf('%');
  if (pct !== -1) {
    if (pct === value.length - 1) return false;
    value = value.slice(0, pct);
  }
  let groups = 8;
  // An embedded IPv4 address takes the place of the last two groups.
  const lastColon = value.lastIndexOf(':');
  if (lastColon !== -1 && value.slice(lastColon + 1).includes('.')) {
    if (!isIPv4(value.slice(lastColon + 1))) return false;
    value = value.slice(0, lastColon + 1) + '0';
    groups = 7;
  }
  const halves = value.split('::');
  if (halves.length > 2) return false;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (![...head, ...tail].every((g) => HEX_GROUP.test(g))) return false;
  const count = head.length + tail.length;
  return halves.length === 2 ? count < groups : count === groups;
}
