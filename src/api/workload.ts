// Workload (weft.dev/v1alpha1): a local process Weft starts with a sidecar in front of it.
import { dirname, isAbsolute, resolve } from 'node:path';
import type { WorkloadSpec } from './types.ts';
import type { KindDef } from './kind.ts';
import { int, listOf, mapOf, obj, port, str, type Schema } from './schema.ts';
import { labelsMap } from './common.ts';
import type { RuleContext } from './rules.ts';
import { checkObjectName } from './names.ts';

const spec: Schema<Record<string, unknown>> = obj(
  {
    // Services select workloads by these labels, so a workload without labels is unreachable.
    labels: labelsMap(),
    serviceAccount: str({ rule: checkObjectName }),
    command: listOf(str(), { minItems: 1 }),
    cwd: str({ minLength: 1 }),
    env: mapOf(str(), { key: (k) => (k === '' || k.includes('=') ? `invalid environment variable name ${JSON.stringify(k)}` : undefined) }),
    port: port(),
    replicas: int({ min: 1 }),
  },
  { required: ['labels', 'command'] },
);

function rules(spec: WorkloadSpec, ctx: RuleContext): void {
  if (spec.labels && Object.keys(spec.labels).length === 0) ctx.error('spec.labels', 'must have at least one label, so that a Service can select this workload');
}

/** Defaults: serviceAccount "default", one replica, and cwd relative to the declaring file's folder. */
function finish(spec: WorkloadSpec, ctx: RuleContext): WorkloadSpec {
  const folder = dirname(resolve(ctx.file));
  const cwd = spec.cwd === undefined ? folder : isAbsolute(spec.cwd) ? spec.cwd : resolve(folder, spec.cwd);
  return {
    ...spec,
    serviceAccount: spec.serviceAccount ?? 'default',
    cwd,
    env: spec.env ?? {},
    replicas: spec.replicas ?? 1,
  };
}

export const workload: KindDef<WorkloadSpec> = {
  group: 'weft.dev',
  kind: 'Workload',
  versions: ['v1alpha1'],
  origin: 'Weft',
  protoNames: false,
  spec,
  specRequired: true,
  rules,
  finish,
};
