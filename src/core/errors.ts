// Mesh errors: a stable code, where it came from, whether a retry may help, and — in this one
// place — the HTTP status, Envoy response flag and body the caller sees.

export type ErrorCode =
  | 'NO_ROUTE'
  | 'NO_HEALTHY_UPSTREAM'
  | 'UPSTREAM_CONNECT_FAILURE'
  | 'UPSTREAM_RESET'
  | 'UPSTREAM_TIMEOUT'
  | 'DOWNSTREAM_DISCONNECT'
  | 'BAD_REQUEST';

export type ErrorSource = 'downstream' | 'upstream' | 'internal';

interface ErrorShape {
  status: number;
  flag: string;
  source: ErrorSource;
  retriable: boolean;
  body: string;
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
  UPSTREAM_TIMEOUT: { status: 504, flag: 'UT', source: 'upstream', retriable: true, body: 'upstream request timeout' },
  DOWNSTREAM_DISCONNECT: { status: 499, flag: 'DC', source: 'downstream', retriable: false, body: '' },
  BAD_REQUEST: { status: 400, flag: 'DPE', source: 'downstream', retriable: false, body: 'bad request' },
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
}

export function errorShape(code: ErrorCode): Readonly<ErrorShape> {
  return SHAPES[code];
}
