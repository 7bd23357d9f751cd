// maxEjectionPercent's default through `weft up`: 10 %, but at least one endpoint can always be ejected.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { weftUpDocs, agent, type RunningWeft } from './helpers/mesh.ts';
import { serviceFor } from './helpers/recorder.ts';
import { faulty, type Faulty } from './helpers/faulty.ts';

const CLUSTER = 'outbound|80||trio.default.svc.cluster.local';

describe('maxEjectionPercent default (10 %, at least one) end to end', () => {
  let weft: RunningWeft;
  let edgeAdmin: string;
  const up: Faulty[] = [];

  before(async () => {
    up.push(await faulty('bad-a', '500'), await faulty('bad-b', '500'), await faulty('good'));
    // No maxEjectionPercent: Istio's default 10 % of 3 endpoints would allow none.
    const docs = [
      serviceFor('trio', up.map((f) => ({ name: f.name, port: f.port }))),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: trio}\nspec:\n  host: trio\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: {consecutive5xxErrors: 2, interval: 100ms, baseEjectionTime: 30s}\n`,
    ];
    ({ weft, edgeAdmin } = await weftUpDocs('weft-outlier-', docs));
  });

  after(async () => {
    if (weft) await weft.stop();
    for (const f of up) await f.close();
  });

  test('of two failing endpoints among three, exactly one is ejected; the other keeps its traffic', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await request(`http://${weft.edge}/p/${i}`, { headers: { host: 'trio' }, dispatcher: agent });
      await r.body.dump();
      statuses.push(r.statusCode);
    }
    const stats = (await (await fetch(`http://${edgeAdmin}/stats`)).json()) as { ejections: Array<{ cluster: string; endpoint: string; reason: string }> };
    const ejected = stats.ejections.filter((e) => e.cluster === CLUSTER);
    assert.equal(ejected.length, 1, JSON.stringify(ejected));
    const [a, b, good] = up as [Faulty, Faulty, Faulty];
    const out = ejected[0]!.endpoint === `127.0.0.1:${a.port}` ? a : b;
    const kept = out === a ? b : a;
    assert.equal(ejected[0]!.endpoint, `127.0.0.1:${out.port}`);
    assert.equal(ejected[0]!.reason, 'consecutive_5xx');
    // The ejected one got exactly its two errors; the one over the limit went on failing.
    assert.equal(out.hits, 2);
    assert.ok(kept.hits > 2, `the second failing endpoint was not ejected and got ${kept.hits} requests`);
    assert.ok(good.hits > 0);
    assert.equal(statuses.filter((s) => s === 500).length, out.hits + kept.hits);
    const metrics = await (await fetch(`http://${edgeAdmin}/metrics`)).text();
    const c = CLUSTER.replace(/\|/g, '\\|');
    assert.match(metrics, new RegExp(`envoy_cluster_outlier_detection_ejections_active\\{cluster_name="${c}"\\} 1`));
    // Each further run of errors from the second one is detected but refused by the percentage.
    const overflow = Number(new RegExp(`envoy_cluster_outlier_detection_ejections_overflow\\{cluster_name="${c}"\\} (\\d+)`).exec(metrics)?.[1]);
    assert.ok(overflow >= 1, `overflow ${overflow}`);
  });
});
