// The mesh CA as the control plane runs it: signing, the trust bundle (with root rotation), and the
// endpoint proxies ask for their workload certificates on.
//
// The endpoint is HTTP/2 cleartext on loopback, beside the push server, with one route:
//
//   POST /v1/certificates   authorization: Bearer <bootstrap token>   {"csr": "<PEM>"}
//   200 {"spiffeId", "certChain", "roots": [PEM…], "notBefore", "notAfter", "serial"}
//
// Refusals are JSON `{"code", "message"}`: 401 UNAUTHENTICATED, 403 PERMISSION_DENIED (a CSR for an
// identity the token was not issued for), 400 INVALID_CSR / BAD_REQUEST, 413 too large, 503
// CA_UNAVAILABLE. Nothing a caller sends can take the server down: bodies are bounded, reads time
// out, and every failure is an answer.
//
// The trust bundle: `roots[0]` is the root the CA signs under now; any others are still trusted
// (a rotation in progress). Proxies get it with each certificate and, while the mesh runs, in
// every snapshot (`trustBundle`), so a rotation reaches them all before anyone needs it.
import http2 from 'node:http2';
import { trackedH2Server } from './h2-server.ts';
import type { CertificateResponse } from '../wire/security.ts';
import { CaError, CertificateAuthority, type Authorizer, type IssuedCertificate, type Issuer } from '../security/ca.ts';

const MAX_BODY_BYTES = 64 * 1024;
const READ_TIMEOUT_MS = 10_000;

export interface MeshCaOptions {
  authorize: Authorizer;
  trustDomain?: string;
  /** Workload certificate lifetime (`weft up --cert-ttl`); 24 h when absent. */
  defaultTtlMs?: number;
  maxTtlMs?: number;
  now?: () => number;
  /** Told about every certificate issued, by the credential that asked (for `weft status`). */
  issued?: (credential: string, cert: IssuedCertificate) => void;
}

export type { CertificateResponse };

/** The CA, its trust bundle, and root rotation with an overlap. */
export class MeshCa {
  private ca: CertificateAuthority;
  private readonly options: MeshCaOptions;
  /** Roots trusted besides the signing one: the next root (before it signs) or the last (after). */
  private upcoming: string[] = [];
  private previous: string[] = [];
  private rotating: Promise<void> = Promise.resolve();

  constructor(issuer: Issuer, options: MeshCaOptions) {
    this.options = options;
    this.ca = this.make(issuer);
  }

  private make(issuer: Issuer): CertificateAuthority {
    const o = this.options;
    return new CertificateAuthority(issuer, { authorize: o.authorize, trustDomain: o.trustDomain, defaultTtlMs: o.defaultTtlMs, maxTtlMs: o.maxTtlMs, now: o.now });
  }

  get trustDomain(): string {
    return this.ca.trustDomain;
  }

  /** The issuer the CA signs with now. */
  issuer(): Issuer {
    return this.ca.issuer;
  }

  /** The roots proxies must trust now; the first is the one the CA signs under. */
  trustBundle(): string[] {
    return [...new Set([this.ca.rootCertPem, ...this.upcoming, ...this.previous])];
  }

  async sign(csr: string, credential: string, ttlMs?: number): Promise<CertificateResponse> {
    const cert = await this.ca.sign({ csr, credential, ttlMs });
    this.options.issued?.(credential, cert);
    return {
      spiffeId: cert.spiffeId,
      certChain: cert.chainPem,
      roots: this.trustBundle(),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      serial: cert.serial,
    };
  }

  /**
   * Move to a new issuer without a failed request, in three steps, each announced to every proxy
   * (`announce` resolves once they all have it): trust the new root beside the old; sign under the
   * new root (proxies whose certificate chains to another root ask for a new one at once); after
   * `overlapMs`, stop trusting the old root. Rotations run one after another.
   */
  rotate(next: Issuer, announce: (bundle: string[]) => Promise<void>, overlapMs: number): Promise<void> {
    const run = async () => {
      const oldRoot = this.ca.rootCertPem;
      if (next.rootCertPem !== oldRoot) {
        this.upcoming = [next.rootCertPem];
        await announce(this.trustBundle());
      }
      this.ca = this.make(next);
      this.upcoming = [];
      this.previous = next.rootCertPem !== oldRoot ? [oldRoot] : [];
      await announce(this.trustBundle());
      if (this.previous.length === 0) return;
      await new Promise((r) => setTimeout(r, overlapMs).unref());
      this.previous = [];
      await announce(this.trustBundle());
    };
    this.rotating = this.rotating.then(run, run);
    return this.rotating;
  }
}

const STATUS: Record<string, number> = { UNAUTHENTICATED: 401, PERMISSION_DENIED: 403, INVALID_CSR: 400, CA_UNAVAILABLE: 503 };

export interface CaServer {
  /** `http://host:port`, what proxies get as WEFT_CA. */
  address: string;
  close(): Promise<void>;
}

export async function startCaServer(bind: { host: string; port: number }, ca: MeshCa, log: (line: string) => void): Promise<CaServer> {
  const { server, listen } = trackedH2Server();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const reply = (status: number, body: unknown) => {
      if (stream.destroyed || stream.headersSent) return;
      stream.respond({ ':status': status, 'content-type': 'application/json' });
      stream.end(JSON.stringify(body) + '\n');
    };
    const refuse = (status: number, code: string, message: string) => reply(status, { code, message });
    if (headers[':path'] !== '/v1/certificates') return refuse(404, 'NOT_FOUND', 'the CA serves POST /v1/certificates');
    if (headers[':method'] !== 'POST') return refuse(405, 'METHOD_NOT_ALLOWED', 'use POST');
    const auth = headers.authorization;
    const credential = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';

    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      refuse(408, 'TIMEOUT', 'request body not received in time');
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, READ_TIMEOUT_MS);
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        clearTimeout(timer);
        refuse(413, 'TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      chunks.push(c);
    });
    stream.on('close', () => clearTimeout(timer));
    stream.on('end', () => {
      clearTimeout(timer);
      if (size > MAX_BODY_BYTES || stream.destroyed) return;
      let body: { csr?: unknown; ttlSeconds?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return refuse(400, 'BAD_REQUEST', 'the body must be JSON: {"csr": "<PEM>"}');
      }
      if (!body || typeof body !== 'object' || typeof body.csr !== 'string') return refuse(400, 'BAD_REQUEST', 'the body must be JSON: {"csr": "<PEM>"}');
      const ttlMs = typeof body.ttlSeconds === 'number' ? body.ttlSeconds * 1000 : undefined;
      ca.sign(body.csr, credential, ttlMs).then(
        (cert) => reply(200, cert),
        (err: unknown) => {
          if (err instanceof CaError) {
            if (err.code !== 'UNAUTHENTICATED') log(`CA refused a certificate: ${err.code}: ${err.message}`);
            return refuse(STATUS[err.code] ?? 400, err.code, err.message);
          }
          log(`CA failed to sign: ${(err as Error)?.stack ?? String(err)}`);
          refuse(500, 'INTERNAL', 'the CA failed to sign');
        },
      );
    });
  });
  return listen(bind);
}
