// Transports: how the proxy speaks to an upstream address — HTTP/1.1, h2c, TLS with ALPN, or mTLS
// to another Weft sidecar — and the connection pool for each.

import { connect as tcpConnect, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { ClusterConfig, ClusterTlsConfig, EndpointConfig, ProxySnapshot, UpstreamProtocol } from '../../wire/snapshot.ts';
import { H1Upstream } from './h1.ts';
import { H2Upstream, hostName } from './h2.ts';
import type { Upstream, UpstreamRequest, UpstreamResponse } from './upstream.ts';
import type { MeshTlsClient } from '../tls.ts';
import { h1Options, h2Options, poolId, withTcpKeepalive, type PoolSettings } from './pool-settings.ts';

export interface Transport {
  readonly protocol: UpstreamProtocol;
  /** TLS the proxy originates, with the trusted CAs already read. */
  readonly tls?: LoadedTls;
  /** mTLS with the workload certificate (to a sidecar, or ISTIO_MUTUAL). */
  readonly mtls?: MeshTransport;
  /** The cluster's connection settings (`connectionPool`); absent = Weft's defaults. */
  readonly pool?: PoolSettings;
}

/** mTLS to a mesh endpoint: whose certificate to expect, and who dials (the current certificate and roots). */
export interface MeshTransport {
  /** The SPIFFE ID the endpoint's certificate must carry. */
  readonly peer: string;
  readonly client: MeshTlsClient;
}

/** ISTIO_MUTUAL on a proxy without a workload certificate: every connection fails (503 UF), never plaintext. */
const NO_CERTIFICATE: MeshTlsClient = {
  connect() {
    throw Object.assign(new Error('ISTIO_MUTUAL needs a workload certificate and this proxy has none'), { code: 'ERR_TLS_NO_CERTIFICATE' });
  },
};

export interface LoadedTls {
  readonly config: ClusterTlsConfig;
  /** The PEM of `config.caCertificates`, when given. */
  readonly ca?: Buffer;
  /** MUTUAL: the PEMs of `config.clientCertificate` and `config.privateKey`. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export const HTTP1: Transport = Object.freeze({ protocol: 'http1' });
/** HTTP/2 cleartext with prior knowledge (h2c). */
export const H2C: Transport = Object.freeze({ protocol: 'h2' });

/** A connection not up within this is a connect failure (503 UF), unless the cluster says otherwise. */
const CONNECT_TIMEOUT_MS = 10_000;
/** SO_KEEPALIVE's first probe on plain HTTP/1.1 connections without `tcpKeepalive` (undici's default, kept). */
const PLAIN_TCP_KEEPALIVE_MS = 60_000;

/** Check what the proxy cannot act on before it is used (a NACK, not a failure on the request path). */
export function checkTransports(snapshot: ProxySnapshot): void {
  const protocolOk = (p: unknown) => p === 'http1' || p === 'h2';
  for (const c of snapshot.clusters) {
    if (!protocolOk(c.protocol)) throw new Error(`cluster ${c.name}: protocol ${JSON.stringify(c.protocol)} is not http1 or h2`);
    if (c.tls && c.tls.mode !== 'SIMPLE' && c.tls.mode !== 'MUTUAL' && c.tls.mode !== 'ISTIO_MUTUAL' && c.tls.mode !== 'DISABLE')
      throw new Error(`cluster ${c.name}: tls mode ${JSON.stringify(c.tls.mode)} is not SIMPLE, MUTUAL, ISTIO_MUTUAL or DISABLE`);
    if (c.tls?.mode === 'MUTUAL' && (!c.tls.clientCertificate || !c.tls.privateKey))
      throw new Error(`cluster ${c.name}: tls mode MUTUAL needs clientCertificate and privateKey files`);
  }
  if (snapshot.inbound && !protocolOk(snapshot.inbound.protocol))
    throw new Error(`inbound: protocol ${JSON.stringify(snapshot.inbound.protocol)} is not http1 or h2`);
}

/**
 * Reads the CA files the clusters name, once per snapshot (so a rotated file is picked up by the
 * next snapshot); an unreadable file throws, so the snapshot is NACKed.
 */
export class TlsMaterial {
  private files = new Map<string, Buffer>();
  /** The proxy's mTLS client, once it has a workload identity; without one, sidecars get plaintext. */
  mesh?: MeshTlsClient;

  load(clusters: readonly ClusterConfig[]): void {
    const next = new Map<string, Buffer>();
    for (const c of clusters)
      for (const path of [c.tls?.caCertificates, c.tls?.clientCertificate, c.tls?.privateKey]) {
        if (!path || next.has(path)) continue;
        next.set(path, readCa(c, path));
      }
    this.files = next;
  }

  /**
   * How the proxy speaks to an endpoint of the cluster. Istio's auto mTLS: a Weft sidecar gets mTLS
   * unless the DestinationRule says DISABLE or its PeerAuthentication does (SIMPLE is for endpoints outside the mesh);
   * ISTIO_MUTUAL gives every endpoint mTLS; other endpoints get SIMPLE TLS when asked, else plaintext.
   * `clientProtocol` (the pool of a `useClientProtocol` cluster for requests that came in that
   * protocol) replaces the cluster's protocol. To a peer sidecar the connection is in that
   * protocol (createUpstream); over SIMPLE or MUTUAL TLS an HTTP/1.1 one still offers `h2` and
   * `http/1.1` and speaks what the server picks.
   */
  transportFor(cluster: ClusterConfig, endpoint: EndpointConfig, clientProtocol?: UpstreamProtocol): Transport {
    const protocol = clientProtocol ?? cluster.protocol;
    const mode = cluster.tls?.mode;
    if (mode === 'ISTIO_MUTUAL' || (endpoint.sidecar && endpoint.mtls !== false && mode !== 'DISABLE' && this.mesh)) {
      return { protocol, mtls: { peer: endpoint.identity, client: this.mesh ?? NO_CERTIFICATE } };
    }
    const tls = (mode === 'SIMPLE' || mode === 'MUTUAL') && !endpoint.sidecar ? cluster.tls! : undefined;
    if (!tls) return protocol === 'h2' ? H2C : HTTP1;
    const file = (path: string | undefined) => {
      if (!path) return undefined;
      let pem = this.files.get(path);
      if (!pem) {
        pem = readCa(cluster, path);
        this.files.set(path, pem);
      }
      return pem;
    };
    return { protocol, tls: { config: tls, ca: file(tls.caCertificates), cert: file(tls.clientCertificate), key: file(tls.privateKey) } };
  }
}

function readCa(cluster: ClusterConfig, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cluster ${cluster.name}: tls file ${path}: ${(err as Error).message}`);
  }
}

/** A stable name for a transport: pools are kept per (address, transport). */
export function transportId(t: Transport): string {
  if (t.pool) return transportId({ ...t, pool: undefined }) + poolId(t.pool);
  if (t.mtls) return `${t.protocol}+mtls:${t.mtls.peer}`;
  if (!t.tls) return t.protocol;
  const c = t.tls.config;
  const digest = (b: Buffer | undefined) => (b ? createHash('sha256').update(b).digest('hex').slice(0, 16) : '');
  return `${t.protocol}+tls:${JSON.stringify([c.sni ?? '', c.subjectAltNames ?? [], c.insecureSkipVerify ?? false, digest(t.tls.ca), digest(t.tls.cert)])}`;
}

/**
 * The connection pool for `host:port` over a transport: a keep-alive pool for HTTP/1.1 (h1.ts),
 * HTTP/2 sessions for h2c and h2 over TLS, and for TLS on an HTTP/1.1 cluster a pool that asks the
 * server by ALPN (h2 or http/1.1) on its first connection and speaks that from then on. The mesh
 * applies route timeouts itself: no pool cuts a slow answer or a long stream.
 */
export function createUpstream(key: string, t: Transport): Upstream {
  const { host, port } = splitKey(key);
  // Every socket dialled below gets the cluster's TCP keepalive.
  const ka = <S extends Socket>(socket: S) => withTcpKeepalive(socket, t.pool);
  if (t.mtls) {
    // Between proxies the hop is in the cluster's protocol, offered alone by ALPN (the peer's
    // inbound side would pick h2 if offered it), as Istio's hop between sidecars is.
    const { client, peer } = t.mtls;
    if (t.protocol === 'h2') return new H2Upstream({ scheme: 'https', authority: key, connect: () => ka(client.connect(host, port, ['h2'], peer)), ...h2Options(t.pool) });
    return http1Pool(key, () => ka(client.connect(host, port, ['http/1.1'], peer)), 'secureConnect', t.pool);
  }
  if (t.tls) {
    const tls = t.tls;
    if (t.protocol === 'h2') return new H2Upstream({ scheme: 'https', authority: key, connect: (sn) => ka(tlsSocket(host, port, tls, ['h2'], sn)), ...h2Options(t.pool) });
    return new AlpnUpstream(key, (alpn, sn) => ka(tlsSocket(host, port, tls, alpn, sn)), t.pool);
  }
  if (t.protocol === 'h2') return new H2Upstream({ scheme: 'http', authority: key, connect: () => ka(tcpConnect({ host, port, noDelay: true })), ...h2Options(t.pool) });
  const plain = () => {
    const s = tcpConnect({ host, port, noDelay: true });
    return t.pool?.tcpKeepaliveMs !== undefined ? ka(s) : s.setKeepAlive(true, PLAIN_TCP_KEEPALIVE_MS);
  };
  return http1Pool(key, plain, 'connect', t.pool);
}

function splitKey(key: string): { host: string; port: number } {
  const colon = key.lastIndexOf(':');
  const host = key.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(key.slice(colon + 1)) };
}

/** An HTTP/1.1 keep-alive pool over the connections `dial` opens (over TLS: offering only `http/1.1`). */
function http1Pool(key: string, dial: (servername: string | undefined) => Socket, readyEvent: 'connect' | 'secureConnect', pool: PoolSettings | undefined): Upstream {
  return new H1Upstream({ authority: key, connect: dial, readyEvent, ...h1Options(pool) });
}

/**
 * TLS on an HTTP/1.1 cluster: the first connection offers `h2` and `http/1.1` and the server's
 * choice holds for the pool's life — HTTP/2 sessions (the probe connection becomes the first), or
 * an HTTP/1.1 keep-alive pool that offers only `http/1.1`.
 */
class AlpnUpstream implements Upstream {
  private readonly key: string;
  /** A new TLS connection to the address offering `alpn`, with the request's server name. */
  private readonly dial: (alpn: string[], servername: string | null | undefined) => TLSSocket;
  private chosen?: Upstream;
  private probing?: Promise<Upstream>;
  private closed = false;

  private readonly pool: PoolSettings | undefined;

  constructor(key: string, dial: (alpn: string[], servername: string | null | undefined) => TLSSocket, pool?: PoolSettings) {
    this.key = key;
    this.dial = dial;
    this.pool = pool;
  }

  async request(r: UpstreamRequest): Promise<UpstreamResponse> {
    const upstream = this.chosen ?? (await this.choose(typeof r.headers.host === 'string' ? hostName(r.headers.host) : undefined));
    return upstream.request(r);
  }

  close(): Promise<void> {
    this.closed = true;
    return this.chosen?.close() ?? Promise.resolve();
  }

  private choose(servername: string | undefined): Promise<Upstream> {
    this.probing ??= new Promise<Upstream>((resolve, reject) => {
      let socket: TLSSocket;
      try {
        socket = this.dial(['h2', 'http/1.1'], servername);
      } catch (err) {
        this.probing = undefined;
        return reject(err);
      }
      whenConnected(socket, 'secureConnect', (err) => {
        this.probing = undefined;
        if (err) return reject(err);
        let chosen: Upstream;
        if (socket.alpnProtocol === 'h2') {
          const h2 = new H2Upstream({ scheme: 'https', authority: this.key, connect: (sn) => this.dial(['h2'], sn), ...h2Options(this.pool) });
          h2.adopt(socket, servername);
          chosen = h2;
        } else {
          socket.destroy();
          chosen = http1Pool(this.key, (sn) => this.dial(['http/1.1'], sn), 'secureConnect', this.pool);
        }
        if (this.closed) void chosen.close();
        this.chosen = chosen;
        resolve(chosen);
      }, this.pool?.connectTimeoutMs);
    });
    return this.probing;
  }
}

/**
 * A raw connection for a request whose bytes the proxy passes through after its head (a WebSocket
 * upgrade): plain TCP, or TLS negotiating HTTP/1.1. Resolves once connected.
 */
export function connectRaw(host: string, port: number, t: Transport, servername: string | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      socket = withTcpKeepalive(
        t.mtls
          ? t.mtls.client.connect(host, port, ['http/1.1'], t.mtls.peer)
          : t.tls
            ? tlsSocket(host, port, t.tls, ['http/1.1'], servername)
            : tcpConnect({ host, port, noDelay: true }),
        t.pool,
      );
    } catch (err) {
      return reject(err);
    }
    whenConnected(socket, t.tls || t.mtls ? 'secureConnect' : 'connect', (err, s) => (err ? reject(err) : resolve(s!)), t.pool?.connectTimeoutMs);
  });
}

/**
 * Envoy's UpstreamTlsContext as Istio builds it for SIMPLE: SNI is `sni`, else the request's host
 * (auto SNI); the chain is checked against `caCertificates` (else the trusted roots) and the
 * certificate must carry one of `subjectAltNames`, else match the server name; nothing is checked
 * with `insecureSkipVerify`.
 */
function tlsSocket(host: string, port: number, tls: LoadedTls, alpn: string[], requestServername: string | null | undefined): TLSSocket {
  const c = tls.config;
  const servername = c.sni || requestServername || undefined;
  const socket = tlsConnect({
    host,
    port,
    servername,
    ALPNProtocols: alpn,
    ca: tls.ca,
    // MUTUAL: present the user's client certificate to the service outside the mesh.
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: !c.insecureSkipVerify,
    checkServerIdentity: (name: string, cert: PeerCertificate) => {
      if (c.insecureSkipVerify) return undefined;
      if (c.subjectAltNames) return sanMatches(cert, c.subjectAltNames) ? undefined : new Error(`certificate SANs ${cert.subjectaltname ?? '(none)'} match none of ${c.subjectAltNames.join(', ')}`);
      return checkServerIdentity(servername ?? name, cert);
    },
  });
  socket.setNoDelay(true);
  return socket;
}

function sanMatches(cert: PeerCertificate, wanted: readonly string[]): boolean {
  const sans = (cert.subjectaltname ?? '').split(', ').map((s) => s.slice(s.indexOf(':') + 1));
  return wanted.some((w) => sans.includes(w));
}

/** Calls back once, on `event` or the first error, or after the connect timeout (undici's code). */
function whenConnected<S extends Socket>(socket: S, event: 'connect' | 'secureConnect', callback: (err: Error | null, socket: S | null) => void, timeoutMs: number = CONNECT_TIMEOUT_MS): void {
  let called = false;
  const once = (err: Error | null) => {
    if (called) return;
    called = true;
    clearTimeout(timer);
    socket.off('error', onError);
    if (err) socket.destroy();
    callback(err, err ? null : socket);
  };
  const onError = (err: Error) => once(err);
  const timer = setTimeout(() => once(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeoutMs);
  socket.once(event, () => once(null));
  socket.on('error', onError);
}
