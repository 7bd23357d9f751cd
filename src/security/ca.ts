// The mesh certificate authority: a root created on first start (or the user's CA), and workload
// certificates signed from CSRs, only ever for the identity the caller proved.
//
// - Workload certificates: the caller's public key (ECDSA P-256) from its CSR, an empty subject, the
//   SPIFFE ID `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` as the only (critical) subjectAltName,
//   CA:FALSE, keyUsage digitalSignature, extKeyUsage serverAuth + clientAuth (every proxy is both a
//   TLS client and server), the issuer's key id. Lifetime 24 h by default (Istio's default), clamped
//   to [10 s, maxTtl] and never past the issuer's own expiry. notBefore is backdated one minute for
//   clock skew; notAfter is exactly issue time + lifetime (whole seconds).
// - Who may have which identity: the injected `authorize(credential)` says which (namespace, service
//   account) the caller holds — local mode hands each proxy a bootstrap token at spawn
//   (`tokenAuthorizer`); a Kubernetes service-account token reviewer fits the same signature. The
//   CSR must ask for exactly that SPIFFE ID and nothing else, or the CA refuses.
// - Order of checks: credential first (an unauthenticated caller learns nothing about its CSR), then
//   the CSR (structure, P-256 key, signature), then the identity. Every refusal is a CaError with a
//   stable code; malformed input never throws anything else.
//
// Signing is pure given the issuer's key (`signWorkloadCertificate`); only `loadOrCreateRootCA` and
// `loadCAFiles` touch files. The root key is written with mode 0600 in a 0700 directory.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { bitString, boolean, children, context, DerError, expectTag, octetString, oid, pemBlocks, readBitString, readOid, readOne, seq, set, smallInteger, Tag, time, tlv, toPem, unsignedInteger, utf8, nullValue, ia5, type Node } from './der.ts';
import { CsrError, OID, parseCsr } from './csr.ts';
import { DEFAULT_TRUST_DOMAIN, identityProblem, spiffeId } from './spiffe.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const DEFAULT_WORKLOAD_TTL_MS = 24 * HOUR;
export const DEFAULT_MAX_WORKLOAD_TTL_MS = 7 * DAY;
/** Short enough to watch rotation happen in a test (`weft up --cert-ttl 10s`); Istio has no floor. */
export const MIN_WORKLOAD_TTL_MS = 10_000;
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * DAY;
const CLOCK_SKEW_MS = MINUTE;

export type CaErrorCode =
  /** The credential is missing, unknown or rejected. */
  | 'UNAUTHENTICATED'
  /** The CSR asks for an identity (or names) the caller does not hold. */
  | 'PERMISSION_DENIED'
  /** The CSR is malformed, unsigned, badly signed or has the wrong key type. */
  | 'INVALID_CSR'
  /** The CA itself cannot sign (its certificate expired, …). */
  | 'CA_UNAVAILABLE';

export class CaError extends Error {
  readonly code: CaErrorCode;
  constructor(code: CaErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The (namespace, service account) a credential proves; undefined or a throw means "not accepted". */
export type Authorizer = (credential: string) => Promise<{ namespace: string; serviceAccount: string } | undefined> | { namespace: string; serviceAccount: string } | undefined;

/** Everything needed to sign: the signing certificate and key, and what chains it to the root. */
export interface Issuer {
  certPem: string;
  privateKey: KeyObject;
  /** The signing certificate's subject, DER, copied into each certificate's issuer field. */
  subject: Uint8Array;
  /** The signing certificate's subjectKeyIdentifier (authorityKeyIdentifier of what it signs). */
  keyId: Uint8Array;
  notAfter: Date;
  /** Certificates between the signing certificate and the root (the signing one included unless it is the root). */
  intermediatesPem: string[];
  /** The trust anchor proxies verify peers against. */
  rootCertPem: string;
}

export interface IssuedCertificate {
  /** The workload certificate. */
  certPem: string;
  /** The certificate followed by any intermediates: what a proxy presents in TLS. */
  chainPem: string;
  rootCertPem: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
  /** Hex, for logs and `weft status`. */
  serial: string;
}

export interface CertificateAuthorityOptions {
  authorize: Authorizer;
  trustDomain?: string;
  defaultTtlMs?: number;
  maxTtlMs?: number;
  /** Wall-clock time in ms since the epoch (certificates carry calendar time). */
  now?: () => number;
  randomBytes?: (n: number) => Uint8Array;
}

export interface SignRequest {
  /** PEM CSR from the proxy. */
  csr: string;
  /** The caller's bootstrap credential (a token in local mode). */
  credential: string;
  /** Requested lifetime; the CA's default when absent. */
  ttlMs?: number;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly issuer: Issuer;
  private readonly options: Required<Omit<CertificateAuthorityOptions, 'trustDomain'>>;

  constructor(issuer: Issuer, options: CertificateAuthorityOptions) {
    this.issuer = issuer;
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const defaultTtlMs = options.defaultTtlMs ?? DEFAULT_WORKLOAD_TTL_MS;
    const maxTtlMs = options.maxTtlMs ?? DEFAULT_MAX_WORKLOAD_TTL_MS;
    if (!(maxTtlMs >= MIN_WORKLOAD_TTL_MS) || !(defaultTtlMs >= MIN_WORKLOAD_TTL_MS) || defaultTtlMs > maxTtlMs) {
      throw new Error(`invalid certificate lifetimes: default ${defaultTtlMs} ms, max ${maxTtlMs} ms`);
    }
    this.options = { authorize: options.authorize, defaultTtlMs, maxTtlMs, now: options.now ?? Date.now, randomBytes: options.randomBytes ?? ((n) => new Uint8Array(randomBytes(n))) };
  }

  get rootCertPem(): string {
    return this.issuer.rootCertPem;
  }

  /** Authenticates the caller, checks its CSR, and signs a certificate for the identity it holds. */
  async sign(request: SignRequest): Promise<IssuedCertificate> {
    const credential = typeof request?.credential === 'string' ? request.credential : '';
    if (credential === '') throw new CaError('UNAUTHENTICATED', 'no credential');
    let holder: { namespace: string; serviceAccount: string } | undefined;
    try {
      holder = await this.options.authorize(credential);
    } catch {
      holder = undefined;
    }
    if (!holder) throw new CaError('UNAUTHENTICATED', 'credential not accepted');
    const held = { trustDomain: this.trustDomain, namespace: holder.namespace, serviceAccount: holder.serviceAccount };
    const problem = identityProblem(held);
    if (problem) throw new CaError('PERMISSION_DENIED', `the credential maps to an invalid identity: ${problem}`);
    const identity = spiffeId(held);

    let csr;
    try {
      csr = parseCsr(typeof request.csr === 'string' ? request.csr : '');
    } catch (e) {
      throw new CaError('INVALID_CSR', e instanceof CsrError ? e.message : 'malformed CSR');
    }
    if (csr.otherNames > 0 || csr.uris.length !== 1) {
      throw new CaError('PERMISSION_DENIED', `the CSR must ask for exactly one name, ${identity}; it asks for ${csr.uris.length} URI(s) and ${csr.otherNames} other name(s)`);
    }
    if (csr.uris[0] !== identity) {
      throw new CaError('PERMISSION_DENIED', `the CSR asks for ${csr.uris[0]} but the caller holds ${identity}`);
    }

    const now = Math.floor(this.options.now() / 1000) * 1000;
    if (now >= this.issuer.notAfter.getTime()) throw new CaError('CA_UNAVAILABLE', 'the CA certificate has expired');
    const requested = request.ttlMs;
    const ttl = requested === undefined || !Number.isFinite(requested) || requested <= 0 ? this.options.defaultTtlMs : requested;
    const clamped = Math.min(Math.max(ttl, MIN_WORKLOAD_TTL_MS), this.options.maxTtlMs);
    const notAfter = new Date(Math.min(now + Math.floor(clamped / 1000) * 1000, this.issuer.notAfter.getTime()));
    const notBefore = new Date(now - CLOCK_SKEW_MS);
    const serial = serialNumber(this.options.randomBytes);
    const certPem = signWorkloadCertificate(this.issuer, { spki: csr.spki, spiffeId: identity, notBefore, notAfter, serial });
    return {
      certPem,
      chainPem: certPem + this.issuer.intermediatesPem.join(''),
      rootCertPem: this.issuer.rootCertPem,
      spiffeId: identity,
      notBefore,
      notAfter,
      serial: Buffer.from(serial).toString('hex'),
    };
  }
}

/** 128 random bits, top bit clear (a positive INTEGER of at most 16 bytes, as RFC 5280 wants ≤ 20). */
function serialNumber(random: (n: number) => Uint8Array): Uint8Array {
  const s = new Uint8Array(random(16));
  s[0] = (s[0]! & 0x7f) | 0x01; // positive and never shorter than 16 bytes
  return s;
}

// ---- Certificates ----

const OIDS = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const KeyUsage = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), boolean(true), octetString(value)) : seq(oid(id), octetString(value));
}

/** keyUsage as a DER BIT STRING: trailing zero bits are not encoded. */
function keyUsage(bits: number): Uint8Array {
  let unused = 0;
  while (unused < 7 && (bits & (1 << unused)) === 0) unused++;
  return tlv(Tag.BIT_STRING, Uint8Array.of(unused, bits));
}

function name(parts: Array<[string, string]>): Uint8Array {
  return seq(...parts.map(([type, value]) => set(seq(oid(type), utf8(value)))));
}

function uriName(uri: string): Uint8Array {
  const n = ia5(uri);
  n[0] = context(6, false);
  return n;
}

/** The signature algorithm an issuer key signs with, and its digest for node:crypto. */
function signatureAlgorithm(key: KeyObject): { id: Uint8Array; digest: string } {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return { id: seq(oid(OID.ecdsaWithSha256)), digest: 'sha256' };
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1') return { id: seq(oid(OID.ecdsaWithSha384)), digest: 'sha384' };
  if (key.asymmetricKeyType === 'rsa') return { id: seq(oid(OID.sha256WithRsa), nullValue()), digest: 'sha256' };
  throw new Error(`unsupported CA key type ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} (use ECDSA P-256/P-384 or RSA)`);
}

function signCertificate(tbs: Uint8Array, key: KeyObject): string {
  const alg = signatureAlgorithm(key);
  const signature = new Uint8Array(sign(alg.digest, tbs, key));
  return toPem('CERTIFICATE', seq(tbs, alg.id, bitString(signature)));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Uint8Array): Uint8Array {
  const [, bits] = children(readOne(spki));
  return new Uint8Array(createHash('sha1').update(readBitString(bits!)).digest());
}

export interface WorkloadCertificateFields {
  /** SubjectPublicKeyInfo DER (from the verified CSR). */
  spki: Uint8Array;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
  serial: Uint8Array;
}

/** Pure given the issuer: builds and signs the workload certificate; PEM. */
export function signWorkloadCertificate(issuer: Issuer, fields: WorkloadCertificateFields): string {
  const alg = signatureAlgorithm(issuer.privateKey);
  const extensions = [
    extension(OIDS.basicConstraints, true, seq()),
    extension(OIDS.keyUsage, true, keyUsage(KeyUsage.digitalSignature)),
    extension(OIDS.extKeyUsage, false, seq(oid(OIDS.serverAuth), oid(OIDS.clientAuth))),
    extension(OIDS.authorityKeyIdentifier, false, seq(tlv(context(0, false), issuer.keyId))),
    // The subject is empty, so the SAN is critical (RFC 5280 §4.2.1.6).
    extension(OID.subjectAltName, true, seq(uriName(fields.spiffeId))),
  ];
  const tbs = seq(
    tlv(context(0), smallInteger(2)), // v3
    unsignedInteger(fields.serial),
    alg.id,
    issuer.subject,
    seq(time(fields.notBefore), time(fields.notAfter)),
    seq(),
    fields.spki,
    tlv(context(3), seq(...extensions)),
  );
  return signCertificate(tbs, issuer.privateKey);
}

/** A new self-signed root: ECDSA P-256, `O=<trust domain>, CN=Weft Root CA`, CA:TRUE. */
export function createRootCA(options: { trustDomain?: string; now?: number; ttlMs?: number; randomBytes?: (n: number) => Uint8Array } = {}): { certPem: string; keyPem: string; issuer: Issuer } {
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const now = Math.floor((options.now ?? Date.now()) / 1000) * 1000;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const subject = name([
    [OIDS.organization, trustDomain],
    [OIDS.commonName, 'Weft Root CA'],
  ]);
  const keyId = keyIdentifier(spki);
  const tbs = seq(
    tlv(context(0), smallInteger(2)),
    unsignedInteger(serialNumber(options.randomBytes ?? ((n) => new Uint8Array(randomBytes(n))))),
    signatureAlgorithm(privateKey).id,
    subject,
    seq(time(new Date(now - CLOCK_SKEW_MS)), time(new Date(now + (options.ttlMs ?? DEFAULT_ROOT_TTL_MS)))),
    subject,
    spki,
    tlv(
      context(3),
      seq(
        extension(OIDS.basicConstraints, true, seq(boolean(true))),
        extension(OIDS.keyUsage, true, keyUsage(KeyUsage.digitalSignature | KeyUsage.keyCertSign | KeyUsage.cRLSign)),
        extension(OIDS.subjectKeyIdentifier, false, octetString(keyId)),
      ),
    ),
  );
  const certPem = signCertificate(tbs, privateKey);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, issuer: issuerFromPem(certPem, keyPem) };
}

/**
 * An issuer from a CA certificate and its key (PEM), plus, when that certificate is not itself the
 * root, the rest of the chain up to and including the root (`chainPem`, closest first).
 */
export function issuerFromPem(certPem: string, keyPem: string, chainPem = ''): Issuer {
  let cert: X509Certificate;
  let certDer: Uint8Array;
  try {
    const [der] = pemBlocks(certPem, ['CERTIFICATE']);
    if (!der) throw new Error('no CERTIFICATE block');
    certDer = der;
    cert = new X509Certificate(Buffer.from(der));
  } catch (e) {
    throw new Error(`CA certificate unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (e) {
    throw new Error(`CA key unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!cert.ca) throw new Error('the CA certificate is not a CA (basicConstraints CA:TRUE missing)');
  if (!cert.checkPrivateKey(privateKey)) throw new Error('the CA key does not match the CA certificate');
  signatureAlgorithm(privateKey); // refuses key types it cannot sign with

  const chain = pemBlocks(chainPem, ['CERTIFICATE']).map((d) => new X509Certificate(Buffer.from(d)));
  const all = [cert, ...chain];
  for (let i = 0; i + 1 < all.length; i++) {
    if (!all[i]!.checkIssued(all[i + 1]!) || !all[i]!.verify(all[i + 1]!.publicKey)) throw new Error(`certificate ${i} of the CA chain is not signed by the next one`);
  }
  const root = all[all.length - 1]!;
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) throw new Error('the CA chain does not end in a self-signed root');

  const { subject, keyId } = subjectAndKeyId(certDer);
  const pem = (c: X509Certificate) => toPem('CERTIFICATE', new Uint8Array(c.raw));
  return {
    certPem: pem(cert),
    privateKey,
    subject,
    keyId,
    notAfter: cert.validToDate,
    intermediatesPem: all.slice(0, -1).map(pem),
    rootCertPem: pem(root),
  };
}

/** The subject Name (DER) and subjectKeyIdentifier of a certificate (computed when absent). */
function subjectAndKeyId(certDer: Uint8Array): { subject: Uint8Array; keyId: Uint8Array } {
  try {
    const [tbs] = children(readOne(certDer));
    const parts = children(expectTag(tbs, Tag.SEQUENCE, 'TBSCertificate'));
    const offset = parts[0]?.tag === context(0) ? 1 : 0;
    const subject = expectTag(parts[offset + 4], Tag.SEQUENCE, 'subject');
    const spki = expectTag(parts[offset + 5], Tag.SEQUENCE, 'SubjectPublicKeyInfo');
    const extensions = parts.find((p: Node) => p.tag === context(3));
    for (const ext of extensions ? children(expectTag(children(extensions)[0], Tag.SEQUENCE, 'Extensions')) : []) {
      const fields = children(ext);
      if (readOid(fields[0]!) === OIDS.subjectKeyIdentifier) {
        const inner = readOne(expectTag(fields[fields.length - 1], Tag.OCTET_STRING, 'extnValue').content);
        return { subject: new Uint8Array(subject.raw), keyId: new Uint8Array(expectTag(inner, Tag.OCTET_STRING, 'keyIdentifier').content) };
      }
    }
    return { subject: new Uint8Array(subject.raw), keyId: keyIdentifier(spki.raw) };
  } catch (e) {
    throw new Error(`CA certificate unreadable: ${e instanceof DerError ? e.message : String(e)}`);
  }
}

// ---- Files ----

export const ROOT_CERT_FILE = 'ca-cert.pem';
export const ROOT_KEY_FILE = 'ca-key.pem';

/**
 * The root CA kept in `dir`: loaded when both files are there, created on first start otherwise.
 * The directory is kept 0700 and the key 0600 (both tightened if looser). A key without its
 * certificate (a crash between the two writes) is replaced; a certificate without its key is an error.
 */
export async function loadOrCreateRootCA(dir: string, options: { trustDomain?: string; now?: number } = {}): Promise<{ issuer: Issuer; created: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (((await stat(dir)).mode & 0o077) !== 0) await chmod(dir, 0o700); // it holds the root key
  const certPath = join(dir, ROOT_CERT_FILE);
  const keyPath = join(dir, ROOT_KEY_FILE);
  const [certStat, keyStat] = await Promise.all([stat(certPath).catch(() => undefined), stat(keyPath).catch(() => undefined)]);
  if (certStat && keyStat) {
    if ((keyStat.mode & 0o077) !== 0) await chmod(keyPath, 0o600);
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { issuer: issuerFromPem(certPem, keyPem), created: false };
  }
  if (certStat) throw new Error(`${certPath} exists but ${keyPath} does not: restore the key, or remove the certificate to create a new root`);
  const root = createRootCA(options);
  await writePrivate(keyPath, root.keyPem, 0o600);
  await writePrivate(certPath, root.certPem, 0o644);
  return { issuer: root.issuer, created: true };
}

/** A user-supplied CA: its certificate and key files, and the chain up to the root when it is an intermediate. */
export async function loadCAFiles(files: { certFile: string; keyFile: string; chainFile?: string }): Promise<Issuer> {
  const [certPem, keyPem, chainPem] = await Promise.all([
    readFile(files.certFile, 'utf8'),
    readFile(files.keyFile, 'utf8'),
    files.chainFile ? readFile(files.chainFile, 'utf8') : Promise.resolve(''),
  ]);
  return issuerFromPem(certPem, keyPem, chainPem);
}

/** Writes through a new temporary file created with `mode`, then renames it into place. */
async function writePrivate(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(tmp, mode); // the umask may have narrowed it further; never wider than asked
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

// ---- Local-mode credentials ----

/**
 * Bootstrap tokens for local mode: the control plane issues one per proxy at spawn and the CA
 * accepts it as proof of that proxy's identity. Tokens are kept only as SHA-256 digests.
 */
export function tokenAuthorizer(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))) {
  const byDigest = new Map<string, { namespace: string; serviceAccount: string }>();
  const digest = (token: string) => createHash('sha256').update(token).digest('hex');
  return {
    /** A new 256-bit token for the identity. */
    issue(identity: { namespace: string; serviceAccount: string }): string {
      const token = Buffer.from(random(32)).toString('base64url');
      byDigest.set(digest(token), { namespace: identity.namespace, serviceAccount: identity.serviceAccount });
      return token;
    },
    revoke(token: string): void {
      byDigest.delete(digest(token));
    },
    authorize: ((credential: string) => byDigest.get(digest(credential))) satisfies Authorizer,
  };
}
