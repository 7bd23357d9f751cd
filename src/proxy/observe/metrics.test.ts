// Metric label sets: the same values give the same series; values are escaped as Prometheus's text format asks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshMetrics, type PeerLabelValues } from './metrics.ts';

const labels = (over: Partial<PeerLabelValues> = {}): PeerLabelValues => ({
  reporter: 'source',
  source_workload: 'client',
  source_workload_namespace: 'default',
  source_principal: 'spiffe://cluster.local/ns/default/sa/client',
  source_app: 'client',
  source_version: 'v1',
  destination_workload: 'model',
  destination_workload_namespace: 'default',
  destination_principal: 'unknown',
  destination_app: 'model',
  destination_version: 'v2',
  destination_service: 'model.default.svc.cluster.local',
  destination_service_name: 'model',
  destination_service_namespace: 'default',
  connection_security_policy: 'mutual_tls',
  ...over,
});

test('the same label values give the same series, so counts add up across configuration swaps', () => {
  const m = new MeshMetrics();
  m.peer(labels()).record(200, '-', '', 3, 0, 10);
  m.peer(labels()).record(200, '-', '', 4, 0, 10);
  assert.match(m.render(), /istio_requests_total\{reporter="source",source_workload="client",[^}]*destination_version="v2",[^}]*response_code="200"[^}]*\} 2\n/);
});

test('backslash, quote and newline in a value are escaped; plain values are written as they are', () => {
  const m = new MeshMetrics();
  m.peer(labels({ destination_version: 'a"b\\c\nd' })).record(503, 'UF', '', 1, 0, 0);
  const text = m.render();
  assert.ok(text.includes('destination_version="a\\"b\\\\c\\nd"'), text.split('\n').find((l) => l.startsWith('istio_requests_total{')));
  assert.ok(text.includes('source_principal="spiffe://cluster.local/ns/default/sa/client"'));
});
