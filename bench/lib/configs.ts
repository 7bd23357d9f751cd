// Configuration files for the processes under test: the nginx upstream, HAProxy, nginx as a proxy, Weft's mesh.
//
// Each proxy gets the same job: `/sse…` to the SSE upstream, everything else to the 1 KiB
// upstream, keep-alive on both sides, one worker / thread, no access log, 127.0.0.1 only.

/** The fixed 1 KiB body the upstream returns. */
export const BODY_BYTES = 1024;

/**
 * nginx serving the 1 KiB body for every path. Started with `-g 'daemon off;'`, so the file must
 * not say `daemon` itself. `dir` holds its pid file, error log and temp folders.
 */
export function upstreamNginxConf(dir: string, port: number): string {
  const body = 'x'.repeat(BODY_BYTES - 1) + '\n';
  return `# nginx upstream for the Weft benchmark: ${BODY_BYTES}-byte body on every path.
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/plain;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "${body}"; }
  }
}
`;
}

/** nginx as a reverse proxy: HTTP/1.1 and a keep-alive pool upstream, SSE unbuffered. */
export function nginxProxyConf(dir: string, port: number, upstreamPort: number, ssePort: number): string {
  return `# nginx as the reverse proxy under test.
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream bench_upstream { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 1000000; }
  upstream bench_sse { server 127.0.0.1:${ssePort}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    # Server-sent events: the usual production setting, stream each chunk as it comes.
    location /sse {
      proxy_pass http://bench_sse;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`;
}

/** HAProxy in http mode, one thread, keep-alive to the upstream (connection reuse always). */
export function haproxyConf(port: number, upstreamPort: number, ssePort: number): string {
  return `# HAProxy under test: http mode, one thread, keep-alive both sides.
global
  nbthread 1
  # maxconn sets the fd limit HAProxy asks for; keep it under common hard limits (20000 here).
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:${port}
  use_backend sse if { path_beg /sse }
  default_backend upstream
backend upstream
  server up 127.0.0.1:${upstreamPort}
# Server-sent events: without http-no-delay HAProxy sends with MSG_MORE and the kernel holds a
# lone event back for up to 200 ms (the usual production setting for SSE and other interactive traffic).
backend sse
  option http-no-delay
  server sse 127.0.0.1:${ssePort}
`;
}

export interface WeftMeshInput {
  upstreamPort: number;
  ssePort: number;
  /** nginx config for the mesh's own upstream app, and the port it listens on. */
  meshNginxConf: string;
  meshNginxErrorLog: string;
  meshNginxPort: number;
  /** Absolute path of the Node.js binary and of bench/sse-server.ts. */
  node: string;
  sseServer: string;
  /** CPU the mesh's apps run on (the upstream side), so only the proxies share the proxy CPU. */
  appCpu: number;
}

/**
 * A Service + DestinationRule + VirtualService for one host, as a user would write it: routing
 * (a uri match), balancing (LEAST_REQUEST, Istio's default, over a subset) and the standard
 * metrics every proxy records.
 */
export function routedService(name: string): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}}
spec:
  host: ${name}
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [${name}]
  http:
  - name: main
    match:
    - uri: {prefix: /}
    route:
    - destination: {host: ${name}, subset: v1}
`;
}

/**
 * The mesh under test. One hop: the edge → `bench-upstream` / `bench-sse`, WorkloadEntries
 * pointing at the shared upstreams. Full mesh path: the `bench-client` workload's sidecar →
 * `mesh-upstream` / `mesh-sse` workloads' sidecars → their apps (nginx with the same config
 * as the shared upstream, and the same SSE server).
 */
export function weftMesh(m: WeftMeshInput): string {
  const docs = [
    routedService('bench-upstream'),
    `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: bench-upstream}
spec: {address: 127.0.0.1, ports: {http: ${m.upstreamPort}}, labels: {app: bench-upstream, version: v1}}
`,
    routedService('bench-sse'),
    `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: bench-sse}
spec: {address: 127.0.0.1, ports: {http: ${m.ssePort}}, labels: {app: bench-sse, version: v1}}
`,
    routedService('mesh-upstream'),
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: mesh-upstream}
spec:
  labels: {app: mesh-upstream, version: v1}
  command: [taskset, -c, '${m.appCpu}', nginx, -e, ${JSON.stringify(m.meshNginxErrorLog)}, -c, ${JSON.stringify(m.meshNginxConf)}, -g, 'daemon off;']
  port: ${m.meshNginxPort}
`,
    routedService('mesh-sse'),
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: mesh-sse}
spec:
  labels: {app: mesh-sse, version: v1}
  command: [taskset, -c, '${m.appCpu}', ${JSON.stringify(m.node)}, ${JSON.stringify(m.sseServer)}]
`,
    // The caller: nothing selects it, so it is ready once started; the load generator plays
    // its app and sends through its sidecar's outbound listener.
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: bench-client}
spec:
  labels: {app: bench-client, version: v1}
  command: [sleep, infinity]
`,
  ];
  return docs.join('---\n');
}

/** A small file whose only job is to be edited, to time how fast a change reaches every proxy. */
export function changeProbe(port: number, weight: number): string {
  return `apiVersion: v1
kind: Service
metadata: {name: change-probe}
spec:
  selector: {app: change-probe}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: change-probe}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: change-probe}, weight: ${weight}}
`;
}

/**
 * Edge-only mesh for route-table scale: `routes-1` has one route; `routes-1000` has 999 routes
 * that never match a request for `/` (exact paths) before the one that does, so a lookup that
 * scans routes in order pays for all of them.
 */
export function routeScaleMesh(upstreamPort: number, routes: number): string {
  const many: string[] = [];
  for (let i = 0; i < routes - 1; i++)
    many.push(`  - name: r${i}
    match:
    - uri: {exact: /route-${i}}
    route:
    - destination: {host: bench-upstream, subset: v1}`);
  return [
    routedService('bench-upstream'),
    `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: bench-upstream}
spec: {address: 127.0.0.1, ports: {http: ${upstreamPort}}, labels: {app: bench-upstream, version: v1}}
`,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: routes-1}
spec:
  hosts: [routes-1]
  http:
  - name: only
    route:
    - destination: {host: bench-upstream, subset: v1}
`,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: routes-${routes}}
spec:
  hosts: [routes-${routes}]
  http:
${many.join('\n')}
  - name: last
    route:
    - destination: {host: bench-upstream, subset: v1}
`,
  ].join('---\n');
}
