// mTLS between Weft proxies: the server side of a sidecar's inbound listener and the client side
// of connections to other sidecars. TLS 1.3 only, both sides present workload certificates.
//
// Server: the client must present a certificate that chains to a mesh root (a missing, expired or
// foreign-CA certificate fails the handshake) and carries exactly one SPIFFE ID of this mesh's trust
// domain; anything else is closed before a byte of HTTP is read. The verified SPIFFE ID is kept on
// the socket (`connectionPeer`) for authorization and metrics: it is the only principal the
// inbound side believes. ALPN offers `h2` first, then `http/1.1`.
//
// Client: the server's certificate must chain to a mesh root and carry exactly the SPIFFE ID the
// snapshot names for the endpoint; a mismatch is a connect failure (503 UF), never a downgrade.
import { connect as tlsConnect, createServer as createTlsServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { parseSpiffeId } from '../security/spiffe.ts';
import type { WorkloadIdentity } from './identity.ts';

/** What the inbound listener offers: HTTP/2 between proxies, HTTP/1.1 where a client needs it. */
export const MESH_ALPN = ['h2', 'http/1.1'];
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Who is on the other end of an inbound connection, as far as the proxy can prove. */
export interface ConnectionPeer {
  mtls: boolean;
  /** The verified SPIFFE ID of the client certificate; `''` for a plaintext connection. */
  principal: string;
}

const PLAINTEXT: ConnectionPeer = Object.freeze({ mtls: false, principal: '' });

interface PeerSocket {
  weftPeer?: ConnectionPeer;
}

/**
 * The peer of the connection a request came on. `req.socket` works for both HTTP versions: over
 * HTTP/2 it is a proxy to the session's socket that passes property reads through.
 */
export function connectionPeer(socket: Socket | undefined): ConnectionPeer {
  return (socket as PeerSocket | undefined)?.weftPeer ?? PLAINTEXT;
}

/** The certificate's SPIFFE ID when its subjectAltName is exactly one URI that is one. */
export function spiffeIdOf(cert: PeerCertificate | undefined): string | undefined {
  const san = cert?.subjectaltname;
  if (!san) return undefined;
  const names = san.split(', ');
  if (names.length !== 1 || !names[0]!.startsWith('URI:')) return undefined;
  const uri = names[0]!.slice(4);
  return parseSpiffeId(uri) ? uri : undefined;
}

/**
 * The TLS side of an inbound listener: `accept(socket)` runs the handshake on a connection whose
 * first bytes were a ClientHello; `serve` gets it once the peer is verified.
 */
export function meshTlsServer(identity: WorkloadIdentity, serve: (socket: TLSSocket) => void): { accept(socket: Socket): void } {
  const options = identity.contextOptions();
  if (!options) throw new Error('mTLS needs a workload certificate first');
  const server = createTlsServer({
    ...options,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: MESH_ALPN,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  identity.onChange(() => {
    const next = identity.contextOptions();
    if (next) server.setSecureContext(next); // new handshakes only; open connections keep theirs
  });
  server.on('tlsClientError', () => {}); // a refused client: the socket is already gone
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', () => socket.destroy());
    const id = socket.authorized ? spiffeIdOf(socket.getPeerCertificate()) : undefined;
    if (!id || parseSpiffeId(id)!.trustDomain !== identity.trustDomain) {
      socket.destroy();
      return;
    }
    (socket as PeerSocket).weftPeer = Object.freeze({ mtls: true, principal: id });
    serve(socket);
  });
  return { accept: (socket) => server.emit('connection', socket) };
}

/** Opens mTLS connections to other sidecars with the proxy's current certificate and roots. */
export interface MeshTlsClient {
  connect(host: string, port: number, alpn: string[], peer: string): TLSSocket;
}

export function meshTlsClient(identity: WorkloadIdentity): MeshTlsClient {
  return {
    connect(host, port, alpn, peer) {
      const secureContext = identity.clientContext();
      if (!secureContext) throw Object.assign(new Error('this proxy has no workload certificate yet'), { code: 'ERR_TLS_NO_CERTIFICATE' });
      const socket = tlsConnect({
        host,
        port,
        secureContext,
        ALPNProtocols: alpn,
        rejectUnauthorized: true,
        checkServerIdentity: (_name: string, cert: PeerCertificate) => {
          const got = spiffeIdOf(cert);
          if (got === peer) return undefined;
          return Object.assign(new Error(`the endpoint's certificate is for ${got ?? cert.subjectaltname ?? '(no SPIFFE ID)'}, not ${peer}`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
        },
      });
      socket.setNoDelay(true);
      return socket;
    },
  };
}
