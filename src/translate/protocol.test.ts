// Protocol selection as Istio does it: service port → protocol, h2UpgradePolicy, useClientProtocol,
// the inbound side, and DestinationRule tls SIMPLE, as tables of examples and through translate.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseText } from '../api/index.ts';
import { buildRegistry, type ServiceInfo, type ServicePortInfo, type WorkloadInstance } from '../registry/registry.ts';
import type { ProxyNode } from '../wire/snapshot.ts';
import { clusterProtocol, clusterTls, inboundProtocol, portProtocol, useClientProtocol } from './protocol.ts';
import { translate } from './translate.ts';

const kube: Pick<ServiceInfo, 'origin'> = { origin: 'Service' };
const entry: Pick<ServiceInfo, 'origin'> = { origin: 'ServiceEntry' };
const port = (name: string, protocol = 'TCP'): ServicePortInfo => ({ name, port: 80, protocol });

describe('portProtocol', () => {
  it('Kubernetes ports: appProtocol when set, else the name prefix', () => {
    const cases: Array<[ServicePortInfo, string]> = [
      [port('http'), 'http'],
      [port('http-api'), 'http'],
      [port('http2'), 'http2'],
      [port('http2-api'), 'http2'],
      [port('grpc'), 'grpc'],
      [port('grpc-inference'), 'grpc'],
      [port('grpc-web'), 'grpc-web'],
      [port('grpc-web-ui'), 'grpc-web'],
      [port('GRPC-x'), 'grpc'],
      [port('web'), 'unsupported'],
      [port('port-80'), 'unsupported'],
      [port('tcp-db'), 'tcp'],
      [port('web', 'grpc'), 'grpc'],
      [port('web', 'http2'), 'http2'],
      [port('web', 'kubernetes.io/h2c'), 'http2'],
      [port('web', 'kubernetes.io/ws'), 'http'],
      [port('grpc', 'http'), 'http'],
      [port('grpc', 'UDP'), 'udp'],
    ];
    for (const [p, want] of cases) assert.equal(portProtocol(kube, p), want, JSON.stringify(p));
  });

  it('ServiceEntry ports: the protocol field, not the name', () => {
    assert.equal(portProtocol(entry, port('grpc-x', 'HTTP')), 'http');
    assert.equal(portProtocol(entry, port('http', 'GRPC')), 'grpc');
    assert.equal(portProtocol(entry, port('http', 'HTTP2')), 'http2');
    assert.equal(portProtocol(entry, port('http', 'TCP')), 'tcp');
  });
});

describe('clusterProtocol', () => {
  const up = (v: string) => ({ connectionPool: { http: { h2UpgradePolicy: v } } });
  it('HTTP/2 for HTTP/2 ports; HTTP/1.1 for http, unknown and missing ports', () => {
    assert.equal(clusterProtocol(kube, port('grpc'), undefined), 'h2');
    assert.equal(clusterProtocol(kube, port('x', 'kubernetes.io/h2c'), undefined), 'h2');
    assert.equal(clusterProtocol(kube, port('http'), undefined), 'http1');
    assert.equal(clusterProtocol(kube, port('web'), undefined), 'http1');
    assert.equal(clusterProtocol(undefined, undefined, undefined), 'http1');
  });
  it('h2UpgradePolicy: UPGRADE upgrades any port; DO_NOT_UPGRADE and DEFAULT keep the port protocol', () => {
    assert.equal(clusterProtocol(kube, port('http'), up('UPGRADE')), 'h2');
    assert.equal(clusterProtocol(kube, port('web'), up('UPGRADE')), 'h2');
    assert.equal(clusterProtocol(undefined, undefined, up('UPGRADE')), 'h2');
    assert.equal(clusterProtocol(kube, port('http'), up('DO_NOT_UPGRADE')), 'http1');
    assert.equal(clusterProtocol(kube, port('http'), up('DEFAULT')), 'http1');
    // Not a downgrade: an HTTP/2 port stays HTTP/2.
    assert.equal(clusterProtocol(kube, port('grpc'), up('DO_NOT_UPGRADE')), 'h2');
  });
});

describe('clusterTls', () => {
  it('carries SIMPLE and MUTUAL with their settings, ISTIO_MUTUAL and DISABLE as modes', () => {
    assert.deepEqual(clusterTls({ tls: { mode: 'SIMPLE' } }), { mode: 'SIMPLE' });
    assert.deepEqual(clusterTls({ tls: { mode: 'SIMPLE', sni: 'api.example.com', caCertificates: '/etc/ca.pem', subjectAltNames: ['api.example.com'], insecureSkipVerify: false } }), {
      mode: 'SIMPLE',
      sni: 'api.example.com',
      caCertificates: '/etc/ca.pem',
      subjectAltNames: ['api.example.com'],
    });
    assert.deepEqual(clusterTls({ tls: { mode: 'SIMPLE', insecureSkipVerify: true } }), { mode: 'SIMPLE', insecureSkipVerify: true });
    for (const mode of ['DISABLE', 'ISTIO_MUTUAL']) assert.deepEqual(clusterTls({ tls: { mode } }), { mode }, mode);
    assert.deepEqual(clusterTls({ tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem', sni: 'x' } }), {
      mode: 'MUTUAL',
      sni: 'x',
      clientCertificate: '/c.pem',
      privateKey: '/k.pem',
    });
    assert.equal(clusterTls({}), undefined, 'unset: auto mTLS');
    assert.equal(clusterTls(undefined), undefined);
  });
});

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: embed}
spec:
  selector: {app: embed}
  ports: [{name: grpc, port: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: chat}
spec:
  selector: {app: chat}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: chat}
spec:
  host: chat
  trafficPolicy:
    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}
  subsets:
  - name: legacy
    labels: {version: v0}
    trafficPolicy:
      connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: llm}
spec:
  hosts: [api.llm.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: llm}
spec:
  host: api.llm.example
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: SIMPLE, sni: api.llm.example}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: chat}
spec:
  hosts: [chat]
  http:
  - match: [{headers: {x-legacy: {exact: "1"}}}]
    route: [{destination: {host: chat, subset: legacy}}]
  - route: [{destination: {host: chat}}]
`;

describe('translate: protocol and TLS on clusters, protocol on the inbound side', () => {
  const { resources, diagnostics } = parseText(MESH, 'mesh.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  const instances: WorkloadInstance[] = [
    { id: 'default/embed-0', workload: 'embed', namespace: 'default', labels: { app: 'embed' }, serviceAccount: 'default', inbound: { host: '127.0.0.1', port: 7001 }, ready: true },
  ];
  const node = (app: string): ProxyNode => ({ id: `default/${app}-0`, kind: 'sidecar', workload: app, namespace: 'default', app, version: 'v1', serviceAccount: 'default', identity: 'x', labels: { app } });
  const registry = buildRegistry(resources, instances);

  it('sets each cluster protocol from its port and merged policy', () => {
    const snap = translate({ resources, registry, proxy: node('client'), version: 1 });
    const by = new Map(snap.clusters.map((c) => [c.name, c]));
    assert.equal(by.get('outbound|9000||embed.default.svc.cluster.local')?.protocol, 'h2');
    assert.equal(by.get('outbound|80||chat.default.svc.cluster.local')?.protocol, 'h2');
    assert.equal(by.get('outbound|80|legacy|chat.default.svc.cluster.local')?.protocol, 'http1');
    const llm = by.get('outbound|80||api.llm.example')!;
    assert.equal(llm.protocol, 'http1');
    assert.deepEqual(llm.tls, { mode: 'SIMPLE', sni: 'api.llm.example' });
    assert.equal(by.get('outbound|9000||embed.default.svc.cluster.local')?.tls, undefined);
  });

  it('the inbound side speaks the protocol of the port that selects the workload', () => {
    const embed = translate({ resources, registry, proxy: node('embed'), inbound: { appHost: '127.0.0.1', appPort: 8000 }, version: 1 });
    assert.deepEqual(embed.inbound, { appHost: '127.0.0.1', appPort: 8000, protocol: 'h2', mtls: { mode: 'PERMISSIVE' } });
    // h2UpgradePolicy is for callers: the chat app itself still gets HTTP/1.1.
    const chat = translate({ resources, registry, proxy: node('chat'), inbound: { appHost: '127.0.0.1', appPort: 8001 }, version: 1 });
    assert.equal(chat.inbound?.protocol, 'http1');
    assert.equal(inboundProtocol(registry, node('nobody')), 'http1');
  });
});

describe('useClientProtocol', () => {
  const pool = (http: Record<string, unknown>) => ({ connectionPool: { http } });
  it('is on only for `true`, and not beside h2UpgradePolicy UPGRADE (applied after it, as Istio does)', () => {
    assert.equal(useClientProtocol(pool({ useClientProtocol: true })), true);
    assert.equal(useClientProtocol(pool({ useClientProtocol: true, h2UpgradePolicy: 'DO_NOT_UPGRADE' })), true);
    assert.equal(useClientProtocol(pool({ useClientProtocol: true, h2UpgradePolicy: 'UPGRADE' })), false);
    assert.equal(useClientProtocol(pool({ useClientProtocol: false })), false);
    assert.equal(useClientProtocol(pool({ maxRetries: 3 })), false);
    assert.equal(useClientProtocol({}), false);
    assert.equal(useClientProtocol(undefined), false);
  });

  const CLIENT_MESH = `
apiVersion: v1
kind: Service
metadata: {name: rerank}
spec:
  selector: {app: rerank}
  ports: [{name: grpc, port: 9000}, {name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: rerank}
spec:
  host: rerank
  trafficPolicy:
    connectionPool: {http: {useClientProtocol: true}}
    portLevelSettings:
    - port: {number: 80}
      connectionPool: {http: {maxRetries: 2}}
  subsets:
  - name: pinned
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {http: {useClientProtocol: false}}
  - name: plain
    labels: {version: v2}
---
apiVersion: v1
kind: Service
metadata: {name: chat}
spec:
  selector: {app: chat}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: rerank}
spec:
  hosts: [rerank]
  http:
  - match: [{headers: {x-pin: {exact: "1"}}}]
    route: [{destination: {host: rerank, port: {number: 9000}, subset: pinned}}]
  - match: [{headers: {x-plain: {exact: "1"}}}]
    route: [{destination: {host: rerank, port: {number: 9000}, subset: plain}}]
  - match: [{port: 80}]
    route: [{destination: {host: rerank, port: {number: 80}}}]
  - route: [{destination: {host: rerank, port: {number: 9000}}}]
`;

  it('translate: the cluster carries it, the port protocol stays for the rest, port and subset policies apply', () => {
    const { resources, diagnostics } = parseText(CLIENT_MESH, 'mesh.yaml');
    assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
    const registry = buildRegistry(resources, []);
    const proxy: ProxyNode = { id: 'default/client-0', kind: 'sidecar', workload: 'client', namespace: 'default', app: 'client', version: 'v1', serviceAccount: 'default', identity: 'x', labels: { app: 'client' } };
    const snap = translate({ resources, registry, proxy, version: 1 });
    const by = new Map(snap.clusters.map((c) => [c.name, c]));
    const grpcPort = by.get('outbound|9000||rerank.default.svc.cluster.local')!;
    // A gRPC port keeps `protocol: h2` (it sizes limits and pools), but each request keeps its own protocol.
    assert.equal(grpcPort.protocol, 'h2');
    assert.equal(grpcPort.useClientProtocol, true);
    // Only a connectionPool that chooses the protocol: no limits from it.
    assert.equal(grpcPort.limits, undefined);
    // The port-level entry for 80 replaces the connection pool, useClientProtocol with it.
    const httpPort = by.get('outbound|80||rerank.default.svc.cluster.local')!;
    assert.equal(httpPort.protocol, 'http1');
    assert.equal('useClientProtocol' in httpPort, false);
    // A subset's connectionPool replaces the rule's; a subset without one inherits it.
    assert.equal('useClientProtocol' in by.get('outbound|9000|pinned|rerank.default.svc.cluster.local')!, false);
    assert.equal(by.get('outbound|9000|plain|rerank.default.svc.cluster.local')?.useClientProtocol, true);
    // No DestinationRule: the field is absent (snapshots of other clusters do not change).
    assert.equal('useClientProtocol' in by.get('outbound|80||chat.default.svc.cluster.local')!, false);
  });
});
