// Schema pieces shared by several kinds: labels, selectors, StringMatch, destinations, percentages.
import { listOf, mapOf, num, obj, port, str, type Schema } from './schema.ts';
import { checkLabelKey, checkLabelValue } from './names.ts';

/** Kubernetes-style labels: validated keys and values. */
export function labelsMap(): Schema<Record<string, string>> {
  return mapOf(str({ rule: checkLabelValue }), { key: checkLabelKey });
}

/** Istio's `WorkloadSelector` with `matchLabels` (security kinds, DestinationRule, ...). */
export function workloadSelector(): Schema<Record<string, unknown>> {
  return obj({ matchLabels: mapOf(str({ maxLength: 63 })) });
}

/** Istio's `PolicyTargetReference` (targetRef/targetRefs on security kinds). */
export function targetRef(): Schema<Record<string, unknown>> {
  return obj(
    {
      group: str({ maxLength: 253 }),
      kind: str({ minLength: 1, maxLength: 63 }),
      name: str({ minLength: 1, maxLength: 253 }),
      namespace: str({ rule: (ns) => (ns === '' ? undefined : 'cross namespace referencing is not currently supported') }),
    },
    { required: ['kind', 'name'] },
  );
}

/** `{exact}`, `{prefix}` or `{regex}`; `{}` is allowed (for headers it means "present"). */
export function stringMatch(): Schema<Record<string, unknown>> {
  return obj({ exact: str(), prefix: str(), regex: str() }, { oneOf: [['exact', 'prefix', 'regex']] });
}

export function portSelector(): Schema<Record<string, unknown>> {
  return obj({ number: port() }, { required: ['number'] });
}

/** A route or mirror destination: a host, optionally a subset and a port. */
export function destination(): Schema<Record<string, unknown>> {
  return obj({ host: str(), subset: str(), port: portSelector() }, { required: ['host'] });
}

/** Istio's `Percent`: `{value: 12.5}`. */
export function percent(): Schema<Record<string, unknown>> {
  return obj({ value: num() });
}

export function stringList(): Schema<Array<string | undefined>> {
  return listOf(str());
}
