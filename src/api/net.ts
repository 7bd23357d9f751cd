// Network value rules: IP addresses, CIDR blocks and ports. Each check returns a problem, or undefined.
import { ipFamily } from '../core/ip.ts';

export function isIPAddress(value: string): boolean {
  return ipFamily(value) !== 0;
}

export function checkIPAddress(value: string): string | undefined {
  return isIPAddress(value) ? undefined : `${value} is not a valid IP`;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a plain address (a one-address block). */
export function checkIPSubnet(value: string): string | undefined {
  const slash = value.indexOf('/');
  if (slash < 0) return checkIPAddress(value);
  const address = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = ipFamily(address);
  const max = family === 4 ? 32 : family === 6 ? 128 : -1;
  // Zones are not allowed in prefixes, and the length must be plain decimal digits.
  if (max < 0 || address.includes('%') || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    return `${value} is not a valid CIDR block`;
  }
  return undefined;
}

export function checkPort(port: number): string | undefined {
  return port >= 1 && port <= 65535 ? undefined : `port number ${port} must be in the range 1..65535`;
}

/** A Unix domain socket path: absolute and not a directory, or an abstract socket (`@name`). */
export function checkUnixAddress(path: string): string | undefined {
  if (path === '') return 'unix address must not be empty';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/') || path.endsWith('/')) return `${path} is not an absolute path to a file`;
  return undefined;
}
