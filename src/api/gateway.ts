// Gateway (networking.istio.io v1, v1beta1, v1alpha3): schema and Istio's rules. Weft runs no gateways yet.
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { bool, enumOf, listOf, mapOf, obj, str, uint32, type Schema } from './schema.ts';
import { stringList } from './common.ts';
import { items, type RuleContext } from './rules.ts';
import { checkWildcardDomain, isDNS1123Label, isPartialWildcard } from './names.ts';
import { checkIPAddress, checkPort, checkUnixAddress, isIPAddress } from './net.ts';
import { checkProtocol } from './serviceentry.ts';

const TLS_VERSION = enumOf(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']);

const serverTLS = obj(
  {
    httpsRedirect: bool(),
    mode: enumOf(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']),
    serverCertificate: str(),
    privateKey: str(),
    caCertificates: str(),
    caCrl: str(),
    credentialName: str(),
    credentialNames: listOf(str(), { minItems: 1, maxItems: 2 }),
    caCertCredentialName: str(),
    tlsCertificates: listOf(obj({ serverCertificate: str(), privateKey: str(), caCertificates: str() }), { minItems: 1, maxItems: 2 }),
    subjectAltNames: stringList(),
    verifyCertificateSpki: stringList(),
    verifyCertificateHash: stringList(),
    minProtocolVersion: TLS_VERSION,
    maxProtocolVersion: TLS_VERSION,
    cipherSuites: stringList(),
    insecureSkipVerify: bool(),
  },
  { oneOf: [['credentialName', 'credentialNames', 'tlsCertificates']] },
);

const spec: Schema<Record<string, unknown>> = obj({
  selector: mapOf(str()),
  servers: listOf(
    obj(
      {
        port: obj({ number: uint32(), protocol: str(), name: str(), targetPort: uint32() }, { required: ['number', 'protocol', 'name'] }),
        bind: str(),
        hosts: stringList(),
        tls: serverTLS,
        defaultEndpoint: str(),
        name: str(),
      },
      { required: ['port', 'hosts'] },
    ),
  ),
});

type AnyRecord = Record<string, any>;

const UNIX_PREFIX = 'unix://';

// `host`, `*.host`, `ns/host`, `./host` or any namespace with `*` then `/host`: the hosts a gateway server exposes.
function checkServerHost(ctx: RuleContext, path: string, value: string): void {
  let host = value;
  const slash = value.indexOf('/');
  if (slash >= 0) {
    const ns = value.slice(0, slash);
    host = value.slice(slash + 1);
    if (ns === '' || host === '') {
      ctx.error(path, 'config namespace and dnsName in host entry cannot be empty');
      return;
    }
    if (ns !== '*' && ns !== '.' && !isDNS1123Label(ns)) ctx.error(path, `invalid namespace value ${JSON.stringify(ns)} in gateway`);
  }
  if (host !== '*' && !host.includes('.')) ctx.error(path, `short names (non FQDN) are not allowed: ${JSON.stringify(host)}`);
  const problem = checkWildcardDomain(host);
  if (problem && !isIPAddress(host)) ctx.error(path, problem);
  if (isPartialWildcard(host)) ctx.error(path, `partial wildcard ${JSON.stringify(host)} not allowed`);
}

function checkServerTLS(ctx: RuleContext, path: string, tls: AnyRecord): void {
  const mode = tls.mode ?? 'PASSTHROUGH';
  const at = (f: string) => joinPath(path, f);
  if (mode === 'ISTIO_MUTUAL') {
    for (const f of ['serverCertificate', 'privateKey', 'caCertificates', 'credentialName']) {
      if (tls[f]) ctx.error(at(f), `ISTIO_MUTUAL TLS cannot have an associated ${f}`, Codes.CONFLICT);
    }
    for (const f of ['tlsCertificates', 'credentialNames']) {
      if (tls[f]?.length) ctx.error(at(f), `ISTIO_MUTUAL TLS cannot have associated ${f}`, Codes.CONFLICT);
    }
    return;
  }
  if ((mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') && (tls.caCrl || tls.serverCertificate || tls.privateKey || tls.caCertificates || tls.tlsCertificates?.length || tls.credentialName || tls.credentialNames?.length)) {
    ctx.warn(path, Codes.SUSPICIOUS, `${mode} mode does not use certificates, they will be ignored`);
  }
  const sources = [tls.serverCertificate && tls.privateKey, tls.credentialName, tls.credentialNames?.length, tls.tlsCertificates?.length].filter(Boolean).length;
  if (sources > 1) ctx.error(path, 'only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates should be specified', Codes.CONFLICT);
  const terminating = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (terminating && (tls.credentialName || tls.credentialNames?.length)) return; // certificates come from the credential
  if (terminating) {
    const prefix = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !tls.caCertificates) ctx.error(at('caCertificates'), `${prefix} requires a client CA bundle`, Codes.REQUIRED);
    const certs: AnyRecord[] = tls.tlsCertificates?.length ? tls.tlsCertificates.filter(Boolean) : [tls];
    for (const cert of certs) {
      if (!cert.serverCertificate) ctx.error(at('serverCertificate'), `${prefix} requires a server certificate`, Codes.REQUIRED);
      if (!cert.privateKey) ctx.error(at('privateKey'), `${prefix} requires a private key`, Codes.REQUIRED);
    }
  }
  if (tls.caCrl) {
    if (tls.credentialName) ctx.error(at('caCrl'), 'CRL is not supported with credentialName; put the CRL in the credential', Codes.CONFLICT);
    if (mode === 'SIMPLE') ctx.error(at('caCrl'), 'CRL is not supported with SIMPLE TLS', Codes.CONFLICT);
  }
}

function rules(spec: AnyRecord, ctx: RuleContext): void {
  const servers: Array<AnyRecord | undefined> = spec.servers ?? [];
  if (servers.length === 0) ctx.error('spec.servers', 'gateway must have at least one server', Codes.REQUIRED);
  const portNames = new Set<string>();
  for (const [server, p] of items(servers, 'spec.servers')) {
    if ((server.hosts?.length ?? 0) === 0) ctx.error(joinPath(p, 'hosts'), 'server config must contain at least one host', Codes.REQUIRED);
    for (const [host, hp] of items<string>(server.hosts, joinPath(p, 'hosts'))) checkServerHost(ctx, hp, host);
    const bind: string = server.bind ?? '';
    const port = server.port as AnyRecord | undefined;
    let portOk = port !== undefined;
    if (port) {
      const pp = joinPath(p, 'port');
      const protocolProblem = port.protocol === undefined ? undefined : port.protocol === '' ? 'protocol is required' : checkProtocol(port.protocol);
      if (protocolProblem) {
        ctx.error(joinPath(pp, 'protocol'), `${protocolProblem}; supported protocols are HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP, TLS`);
        portOk = false;
      }
      if ((port.number ?? 0) > 0 || !bind.startsWith(UNIX_PREFIX)) {
        const problem = checkPort(port.number ?? 0);
        if (problem) {
          ctx.error(joinPath(pp, 'number'), problem);
          portOk = false;
        }
      }
      if ((port.targetPort ?? 0) > 0) ctx.error(joinPath(pp, 'targetPort'), 'targetPort has no impact on Gateways');
      if (port.name !== undefined) {
        if (portNames.has(port.name)) ctx.error(joinPath(pp, 'name'), `port names in servers must be unique: duplicate name ${port.name}`, Codes.DUPLICATE);
        portNames.add(port.name);
      }
    }
    if (bind.startsWith(UNIX_PREFIX)) {
      const problem = checkUnixAddress(bind.slice(UNIX_PREFIX.length));
      if (problem) ctx.error(joinPath(p, 'bind'), problem);
      if ((port?.number ?? 0) !== 0) ctx.error(`${p}.port.number`, 'port number must be 0 for a unix domain socket bind');
    } else if (bind !== '') {
      const problem = checkIPAddress(bind);
      if (problem) ctx.error(joinPath(p, 'bind'), problem);
    }
    if (server.tls) checkServerTLS(ctx, joinPath(p, 'tls'), server.tls);
    if (portOk && port?.protocol) {
      const proto = String(port.protocol).toLowerCase();
      const isTLS = proto === 'https' || proto === 'tls';
      const isHTTP = ['http', 'http2', 'http_proxy', 'grpc', 'grpc-web'].includes(proto);
      const tls = server.tls as AnyRecord | undefined;
      if (isTLS && !tls) ctx.error(joinPath(p, 'tls'), 'server must have TLS settings for HTTPS/TLS protocols', Codes.REQUIRED);
      else if (!isTLS && tls) {
        const passthrough = (tls.mode ?? 'PASSTHROUGH') === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH';
        if (isHTTP) {
          // Only an HTTPS redirect makes sense on a plain-text HTTP server.
          if (!passthrough || tls.caCertificates || tls.privateKey || tls.serverCertificate) {
            ctx.error(joinPath(p, 'tls'), 'server cannot have TLS settings for plain text HTTP ports');
          }
        } else {
          ctx.error(joinPath(p, 'tls'), 'server cannot have TLS settings for non HTTPS/TLS ports');
        }
      }
      if (!isHTTP && tls?.httpsRedirect) ctx.warn(`${p}.tls.httpsRedirect`, Codes.SUSPICIOUS, 'tls.httpsRedirect should only be used with http servers');
    }
  }
}

export const gateway: KindDef = {
  group: 'networking.istio.io',
  kind: 'Gateway',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  origin: 'Istio',
  protoNames: true,
  spec,
  // Istio requires a Gateway name to be a DNS label: no dots.
  nameRule: (name) => (isDNS1123Label(name) && name === name.toLowerCase() ? undefined : `invalid gateway name ${JSON.stringify(name)}: must be a lowercase DNS label (no dots)`),
  rules,
};
