// The proxy's workload identity: its own key (made here, never sent anywhere), a certificate for it
// from the mesh CA, rotated at half its remaining life, and the trust bundle peers are checked against.
//
// Start-up asks for the first certificate and waits for it (retrying while the CA is unreachable),
// so a proxy never serves mesh traffic without one. Rotation makes a new key and CSR each time; a
// certificate in use keeps serving until the new one is in hand, and connections already open
// keep the certificate they were opened with, so a rotation fails no request. The trust bundle
// comes with each certificate and, while the mesh runs, with every snapshot; when its first root
// (the one the CA signs under now) is not the root this proxy's certificate chains to, the proxy
// asks for a new certificate at once (root rotation).
import type { CertificateResponse } from '../wire/security.ts';
import http2 from 'node:http2';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { createWorkloadCsr } from '../security/csr.ts';
import { parseSpiffeId } from '../security/spiffe.ts';

const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

export interface WorkloadIdentityOptions {
  /** `http://host:port` of the CA endpoint. */
  ca: string;
  /** The bootstrap credential the control plane handed over at spawn. */
  token: string;
  /** The SPIFFE ID to ask for: the one the token was issued for. */
  spiffeId: string;
  log(line: string): void;
  /** Wall clock (certificates carry calendar time). */
  now?: () => number;
}

/** What `weft status` and the admin `/stats` show. */
export interface IdentityStatus {
  spiffeId: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Certificates obtained since start, the first included. */
  issued: number;
  roots: number;
}

interface Held {
  chainPem: string;
  keyPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** The root the CA signed under (the first of the bundle it answered with). */
  issuedUnder: string;
}

export class WorkloadIdentity {
  readonly spiffeId: string;
  readonly trustDomain: string;
  private readonly o: WorkloadIdentityOptions;
  private readonly now: () => number;
  private held?: Held;
  private caRoots: string[] = [];
  private pushedRoots?: string[];
  private client?: SecureContext;
  private issued = 0;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private closed = false;
  private readonly listeners: Array<() => void> = [];

  constructor(o: WorkloadIdentityOptions) {
    const parsed = parseSpiffeId(o.spiffeId);
    if (!parsed) throw new Error(`not a workload SPIFFE ID: ${JSON.stringify(o.spiffeId)}`);
    this.o = o;
    this.spiffeId = o.spiffeId;
    this.trustDomain = parsed.trustDomain;
    this.now = o.now ?? Date.now;
  }

  /** Resolves with the first certificate in hand; retries until it is (or the identity is closed). */
  async start(): Promise<void> {
    let delay = RETRY_MIN_MS;
    let attempt = 0;
    while (!this.closed && !this.held) {
      try {
        await this.renew();
      } catch (err) {
        if (attempt++ % 10 === 0) this.o.log(`no workload certificate yet (${(err as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(RETRY_MAX_MS, delay * 2);
      }
    }
  }

  /** TLS options for this proxy's side of an mTLS connection: its chain, its key, the roots (TLS 1.3 only). */
  contextOptions(): SecureContextOptions | undefined {
    const h = this.held;
    if (!h) return undefined;
    return { cert: h.chainPem, key: h.keyPem, ca: this.roots(), minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
  }

  /** The client-side context, rebuilt when the certificate or the roots change. */
  clientContext(): SecureContext | undefined {
    if (!this.client) {
      const options = this.contextOptions();
      if (options) this.client = createSecureContext(options);
    }
    return this.client;
  }

  /** The roots peers are verified against: the pushed bundle when there is one, else the CA's answer. */
  roots(): string[] {
    return this.pushedRoots ?? this.caRoots;
  }

  /** Called with each snapshot's bundle; a new signing root makes the proxy ask for a new certificate now. */
  setTrustBundle(roots: readonly string[] | undefined): void {
    const next = roots && roots.length > 0 ? [...roots] : undefined;
    if (JSON.stringify(next) === JSON.stringify(this.pushedRoots)) return;
    this.pushedRoots = next;
    this.changed();
    if (next && this.held && normalise(next[0]!) !== normalise(this.held.issuedUnder)) {
      this.o.log('the mesh root changed; asking for a certificate under the new root');
      void this.rotateNow();
    }
  }

  /** Called (synchronously) after every change of certificate or roots. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  status(): IdentityStatus | undefined {
    const h = this.held;
    if (!h) return undefined;
    return { spiffeId: this.spiffeId, serial: h.serial, notBefore: h.notBefore.toISOString(), notAfter: h.notAfter.toISOString(), issued: this.issued, roots: this.roots().length };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private changed(): void {
    this.client = undefined;
    for (const l of this.listeners) l();
  }

  private rotateNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    return this.renew().catch((err: Error) => {
      this.o.log(`certificate rotation failed (${err.message}); retrying`);
      this.schedule(RETRY_MIN_MS * 5);
    });
  }

  /** One request to the CA; coalesced, so a timer and a root change never ask twice at once. */
  private renew(): Promise<void> {
    this.inFlight ??= this.request().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async request(): Promise<void> {
    const { privateKeyPem, csrPem } = createWorkloadCsr(this.spiffeId);
    const answer = await post(this.o.ca, this.o.token, { csr: csrPem });
    if (this.closed) return;
    const notAfter = new Date(answer.notAfter);
    const notBefore = new Date(answer.notBefore);
    if (answer.spiffeId !== this.spiffeId || !Number.isFinite(notAfter.getTime()) || !Array.isArray(answer.roots) || answer.roots.length === 0) {
      throw new Error('the CA answered with something that is not a certificate for this workload');
    }
    this.held = { chainPem: answer.certChain, keyPem: privateKeyPem, serial: answer.serial, notBefore, notAfter, issuedUnder: answer.roots[0]! };
    this.caRoots = answer.roots;
    this.issued++;
    this.changed();
    // Half of what is left: rotation at half-life, measured from now so clock skew cannot make it late.
    this.schedule(Math.max(1000, (notAfter.getTime() - this.now()) / 2));
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.rotateNow(), Math.min(ms, 2 ** 31 - 1)).unref();
  }
}

function normalise(pem: string): string {
  return pem.replace(/\s+/g, '');
}


/** POST a CSR to the CA over HTTP/2; resolves with its answer, rejects with its refusal. */
function post(address: string, token: string, body: { csr: string }): Promise<CertificateResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(address);
    const fail = (err: Error) => {
      session.destroy();
      reject(err);
    };
    session.on('error', fail);
    session.setTimeout(REQUEST_TIMEOUT_MS, () => fail(new Error('the CA did not answer in time')));
    const stream = session.request({ ':method': 'POST', ':path': '/v1/certificates', 'content-type': 'application/json', authorization: `Bearer ${token}` });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', fail);
    stream.on('end', () => {
      session.close();
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reject(new Error(`the CA answered ${status} with an unreadable body`));
      }
      if (status !== 200) {
        const e = parsed as { code?: string; message?: string };
        return reject(new Error(`the CA refused: ${e.code ?? status}: ${e.message ?? ''}`));
      }
      resolve(parsed as CertificateResponse);
    });
    stream.end(JSON.stringify(body));
  });
}
