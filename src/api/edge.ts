// The labels Weft's edge proxy carries: Gateways that select them are served by the edge.

/** Istio's default ingress gateway label, so Istio's own Gateway examples bind unchanged. */
export const EDGE_LABELS: Readonly<Record<string, string>> = { app: 'weft-edge', istio: 'ingressgateway' };
