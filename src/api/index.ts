// The api/ layer's public face: load mesh files, validate them as Istio would, analyze them together.
import type { LoadResult } from './types.ts';
import { loadPaths } from './parse.ts';
import { analyze, latestDefinitions } from './analyze.ts';
import { compareDiagnostics } from './diagnostics.ts';

export { loadPaths, parseText } from './parse.ts';
export { analyze, latestDefinitions } from './analyze.ts';
export { Codes, compareDiagnostics, formatDiagnostic, hasErrors } from './diagnostics.ts';
export { CLUSTER_DOMAIN, fqdn, hostCoveredBy, serviceFqdn } from './hosts.ts';
export { compileRe2, translateRe2 } from '../core/re2.ts';
export { parseDuration } from '../core/duration.ts';
export { NOT_IMPLEMENTED_FIELDS, NOT_IMPLEMENTED_KINDS } from './implemented.ts';
export type * from './types.ts';

/**
 * Loads files and folders, keeps the last definition of each name, then checks the resources
 * against each other. Diagnostics (from
 * loading and from analysis) are sorted by file, line and column.
 */
export async function loadMesh(paths: string[]): Promise<LoadResult> {
  const loaded = await loadPaths(paths);
  const latest = latestDefinitions(loaded.resources);
  const diagnostics = [...loaded.diagnostics, ...latest.diagnostics, ...analyze(latest.resources)].sort(compareDiagnostics);
  return { resources: latest.resources, diagnostics };
}
