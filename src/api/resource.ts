// One YAML document → one validated Resource: envelope (apiVersion, kind, metadata), then the kind's schema, rules and defaults.
import { isMap, isScalar, type YAMLMap } from 'yaml';
import type { Diagnostic, ObjectMeta, Resource, Severity } from './types.ts';
import type { KindDef } from './kind.ts';
import { Codes, makeDiagnostic } from './diagnostics.ts';
import { anyValue, checkRoot, int, mapOf, obj, str, type CheckContext, type Schema, type ValueRule } from './schema.ts';
import { labelsMap, stringList } from './common.ts';
import { checkNamespaceName, checkObjectName } from './names.ts';
import { isNullNode, keyString, offsetOfPath, posAt, resolveNode, startOf, type YamlSource } from './positions.ts';
import { lookupKind } from './kinds.ts';
import { notImplemented } from './implemented.ts';
import type { RuleContext } from './rules.ts';

export const DEFAULT_NAMESPACE = 'default';

function metadataSchema(nameRule: ValueRule<string>): Schema<Record<string, unknown>> {
  return obj(
    {
      name: str({ rule: nameRule }),
      namespace: str({ rule: checkNamespaceName }),
      labels: labelsMap(),
      annotations: mapOf(str()),
      // Fields a manifest exported from a cluster carries; accepted and not used.
      generateName: str(),
      uid: str(),
      resourceVersion: str(),
      generation: int({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      creationTimestamp: anyValue(),
      deletionTimestamp: anyValue(),
      deletionGracePeriodSeconds: anyValue(),
      ownerReferences: anyValue(),
      finalizers: stringList(),
      managedFields: anyValue(),
      selfLink: str(),
    },
    { required: ['name'] },
  );
}

/** The spec is read with the kind's own field-name rules (snake_case only for protobuf kinds). */
function specSchema(def: KindDef): Schema<Record<string, unknown>> {
  return {
    expected: def.spec.expected,
    check: (node, site, ctx) => def.spec.check(node, site, { ...ctx, protoNames: def.protoNames }),
  };
}

function envelopeSchema(def: KindDef): Schema<Record<string, unknown>> {
  return obj(
    {
      apiVersion: str(),
      kind: str(),
      metadata: metadataSchema(def.nameRule ?? checkObjectName),
      spec: specSchema(def),
      // Present in manifests exported from a cluster; Weft ignores it.
      status: anyValue(),
    },
    { required: def.specRequired ? ['metadata', 'spec'] : ['metadata'] },
  );
}

/** A top-level string field read before the schema is known (apiVersion, kind). */
function headField(map: YAMLMap, src: YamlSource, name: string, out: Diagnostic[]): { value: string; offset: number } | undefined {
  const pair = map.items.find((p) => keyString(p, src.doc) === name);
  const mapOffset = startOf(map) ?? 0;
  if (!pair || isNullNode(resolveNode(pair.value, src.doc))) {
    out.push(makeDiagnostic('error', Codes.REQUIRED, name, `required field "${name}" is missing`, posAt(src, mapOffset)));
    return undefined;
  }
  const value = resolveNode(pair.value, src.doc);
  const offset = startOf(value) ?? mapOffset;
  if (!isScalar(value) || typeof value.value !== 'string') {
    out.push(makeDiagnostic('error', Codes.INVALID_TYPE, name, 'expected a string', posAt(src, offset)));
    return undefined;
  }
  return { value: value.value, offset };
}

/**
 * Validates one document. Diagnostics are appended to `diagnostics`; the resource is returned only
 * when it has no errors, so `resources` always holds what Weft would actually apply.
 */
export function resourceFromDocument(src: YamlSource, diagnostics: Diagnostic[]): Resource | undefined {
  const root = resolveNode(src.doc.contents, src.doc);
  if (isNullNode(root)) return undefined; // an empty document: a trailing `---`, or only comments
  const rootOffset = startOf(root) ?? 0;
  if (!isMap(root)) {
    diagnostics.push(makeDiagnostic('error', Codes.INVALID_TYPE, '', 'a mesh document must be a map with apiVersion, kind, metadata and spec', posAt(src, rootOffset)));
    return undefined;
  }

  // apiVersion and kind decide which schema the rest of the document is checked against.
  const head: Diagnostic[] = [];
  const apiVersion = headField(root, src, 'apiVersion', head);
  const kind = headField(root, src, 'kind', head);
  if (!apiVersion || !kind) {
    diagnostics.push(...head);
    return undefined;
  }
  const lookup = lookupKind(apiVersion.value, kind.value);
  if ('unknown' in lookup) {
    diagnostics.push(makeDiagnostic('error', Codes.UNKNOWN_KIND, 'kind', lookup.unknown, posAt(src, kind.offset)));
    return undefined;
  }
  if ('ignored' in lookup) {
    diagnostics.push(makeDiagnostic('warning', Codes.IGNORED_KIND, 'kind', lookup.ignored, posAt(src, kind.offset)));
    return undefined;
  }
  const def = lookup.found;

  const local: Diagnostic[] = [];
  const ctx: CheckContext = { ...src, protoNames: false, diagnostics: local };
  const envelope = checkRoot(envelopeSchema(def), root, '', ctx) ?? {};
  const meta = (envelope.metadata ?? {}) as Partial<ObjectMeta>;
  const posOf = (path: string) => posAt(src, offsetOfPath(root, path, src.doc, def.protoNames));
  const add = (severity: Severity, code: string, path: string, text: string) => local.push(makeDiagnostic(severity, code, path, text, posOf(path)));

  const name = meta.name;
  const namespace = meta.namespace ?? DEFAULT_NAMESPACE;
  const rules: RuleContext = {
    name: name ?? '',
    namespace,
    file: src.file,
    labels: meta.labels ?? {},
    annotations: meta.annotations ?? {},
    error: (path, text, code = Codes.INVALID_VALUE) => add('error', code, path, text),
    warn: (path, code, text) => add('warning', code, path, text),
    posOf,
  };

  // A missing spec is an empty one, unless the kind requires it (then REQUIRED was reported and
  // there is nothing for the rules to look at); a spec that failed its type check is skipped too.
  const specNode = root.items.find((p) => keyString(p, src.doc) === 'spec');
  const specMissing = !specNode || isNullNode(resolveNode(specNode.value, src.doc));
  const specValid = envelope.spec !== undefined || (specMissing && !def.specRequired);
  let spec: unknown = envelope.spec ?? {};
  if (specValid) {
    try {
      def.rules?.(spec, rules);
    } catch (err) {
      // A bug in a rule must not take the whole load down; report it against the document.
      add('error', Codes.INVALID_VALUE, 'spec', `internal error while validating: ${(err as Error).message}`);
    }
  }

  if (name === undefined || local.some((d) => d.severity === 'error')) {
    diagnostics.push(...local);
    return undefined;
  }
  if (def.finish) spec = def.finish(spec, rules);
  for (const ignored of notImplemented(def, namespace, name, spec)) add('warning', Codes.NOT_IMPLEMENTED, ignored.path, ignored.message);
  diagnostics.push(...local);
  if (local.some((d) => d.severity === 'error')) return undefined;

  const metadata: ObjectMeta = { name, namespace, labels: meta.labels ?? {}, annotations: meta.annotations ?? {} };
  return { apiVersion: apiVersion.value, kind: kind.value, metadata, spec, source: posAt(src, rootOffset), posOf };
}
