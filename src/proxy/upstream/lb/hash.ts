// hash53: a fast, well-mixed, non-cryptographic string hash for consistent hashing (53 bits, no BigInt).

// Why 53 bits: that is what a double holds exactly, so ring positions live in a Float64Array that
// sorts natively and compares with plain `<`. Two 32-bit lanes are mixed with Math.imul (one
// machine multiply each) and then cross-mixed, which gives 64 bits of state for the price of a
// couple of multiplies per character; the top 53 of those bits are returned.

const TWO_POW_21 = 2 ** 21;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** The murmur3 32-bit finaliser: every input bit flips about half the output bits. */
function avalanche(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Hashes the UTF-16 code units of `s` to an integer in [0, 2^53). Different `seed`s give
 * independent hash functions (ring points and Maglev's two permutation hashes use them).
 * Stable across processes and versions: changing it would move every hashed key in the mesh.
 */
export function hash53(s: string, seed = 0): number {
  let a = avalanche(0x9e3779b9 ^ seed);
  let b = avalanche(0x7f4a7c15 ^ Math.imul(seed, 0x85ebca77));
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = rotl(Math.imul(a ^ c, 0xcc9e2d51), 15);
    b = rotl(Math.imul(b ^ c, 0x1b873593), 13);
    a = (a + b) | 0;
  }
  a ^= s.length;
  const hi = avalanche(a ^ Math.imul(b, 0x27d4eb2f));
  const lo = avalanche(b ^ Math.imul(hi, 0x165667b1));
  return hi * TWO_POW_21 + (lo >>> 11);
}
