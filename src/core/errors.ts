// Mesh errors: a stable code, where it came from, whether a retry may help, and — in this one
// place — the HTTP status, Envoy response flag and body the caller sees.

export type ErrorCode =
  | 'NO_ROUTE'
  | 'NO_HEALTHY_UPSTREAM'
  | 'UPSTREAM_CONNECT_FAILURE'
  | 'UPSTREAM_RESET'
  | 'UPSTREAM_REFUSED_STREAM'
  | 'UPSTREAM_TIMEOUT'
  | 'STREAM_IDLE_TIMEOUT'
  | 'OVERFLOW'
  | 'DOWNSTREAM_DISCONNECT'
  | 'BAD_REQUEST'
  | 'RBAC_DENIED';

export type ErrorSource = 'downstream' | 'upstream' | 'internal';

interface ErrorShape {
  status: number;
  flag: string;
  source: ErrorSource;
  retriable: boolean;
  body: string;
  /** Headers that go with the answer (Envoy marks an overflow with `x-envoy-overloaded`). */
  headers?: Readonly<Record<string, string>>;
}

// Bodies follow Envoy's wording, so users' runbooks and searches still work.
const SHAPES: Record<ErrorCode, ErrorShape> = {
  NO_ROUTE: { status: 404, flag: 'NR', source: 'internal', retriable: false, body: 'no route matched' },
  NO_HEALTHY_UPSTREAM: { status: 503, flag: 'UH', source: 'upstream', retriable: true, body: 'no healthy upstream' },
  UPSTREAM_CONNECT_FAILURE: {
    status: 503,
    flag: 'UF',
    source: 'upstream',
    retriable: true,
    body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  },
  UPSTREAM_RESET: {
    status: 503,
    flag: 'UC',
    source: 'upstream',
    retriable: true,
    body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
  },
  // The upstream refused the stream unprocessed (HTTP/2 REFUSED_STREAM, or a stream above a GOAWAY's
  // last stream id), so any method may be retried: Envoy's RemoteRefusedStreamReset, which its
  // router flags UR (upstream remote reset) and `refused-stream` retries.
  UPSTREAM_REFUSED_STREAM: {
    status: 503,
    flag: 'UR',
    source: 'upstream',
    retriable: true,
    body: 'upstream connect error or disconnect/reset before headers. reset reason: remote refused stream reset',
  },
  UPSTREAM_TIMEOUT: { status: 504, flag: 'UT', source: 'upstream', retriable: true, body: 'upstream request timeout' },
  // Weft's idle timeout between chunks of an answer (Envoy's stream idle timeout, flag SI).
  STREAM_IDLE_TIMEOUT: { status: 504, flag: 'SI', source: 'upstream', retriable: false, body: 'stream timeout' },
  // A circuit limit refused the request (pending queue full, or max requests reached): never retried.
  OVERFLOW: {
    status: 503,
    flag: 'UO',
    source: 'upstream',
    retriable: false,
    body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    headers: Object.freeze({ 'x-envoy-overloaded': 'true' }),
  },
  DOWNSTREAM_DISCONNECT: { status: 499, flag: 'DC', source: 'downstream', retriable: false, body: '' },
  BAD_REQUEST: { status: 400, flag: 'DPE', source: 'downstream', retriable: false, body: 'bad request' },
  // An AuthorizationPolicy denied the request (Envoy's RBAC filter: no response flag, this body).
  RBAC_DENIED: { status: 403, flag: '-', source: 'downstream', retriable: false, body: 'RBAC: access denied' },
};

export class MeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, detail?: string) {
    super(detail ? `${SHAPES[code].body}: ${detail}` : SHAPES[code].body);
    this.code = code;
  }
  get status(): number {
    return SHAPES[this.code].status;
  }
  get flag(): string {
    return SHAPES[this.code].flag;
  }
  get source(): ErrorSource {
    return SHAPES[this.code].source;
  }
  get retriable(): boolean {
    return SHAPES[this.code].retriable;
  }
  get headers(): Readonly<Record<string, string>> | undefined {
    return SHAPES[this.code].headers;
  }
}

export function errorShape(code: ErrorCode): Readonly<ErrorShape> {
  return SHAPES[code];
}
