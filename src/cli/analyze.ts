// `weft analyze -f PATH...`: validate mesh files without running them.

import { loadMesh, formatDiagnostic } from '../api/index.ts';
import { parseArgs, UsageError } from './args.ts';

export const analyzeHelp = `Usage: weft analyze -f PATH [-f PATH]... [-o json]

Validate mesh files (Istio YAML, Kubernetes Services, weft.dev kinds) without running them.
Folders are read recursively (*.yaml, *.yml). Each finding is printed as
  file:line:col: error|warning CODE: message

Exit codes: 0 no errors (warnings allowed), 1 configuration errors, 2 usage errors.
`;

export async function analyzeCommand(argv: string[]): Promise<number> {
  const { flags, rest } = parseArgs(argv, [
    { name: 'file', short: 'f', value: true, repeat: true },
    { name: 'output', short: 'o', value: true },
    { name: 'help', short: 'h' },
  ]);
  if (flags.help) {
    process.stdout.write(analyzeHelp);
    return 0;
  }
  const paths = [...((flags.file as string[] | undefined) ?? []), ...rest];
  if (paths.length === 0) throw new UsageError('weft analyze needs at least one -f PATH');
  const output = (flags.output as string[] | undefined)?.[0];
  if (output && output !== 'json') throw new UsageError('-o takes "json"');
  const { resources, diagnostics } = await loadMesh(paths);
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  if (output === 'json') {
    process.stdout.write(JSON.stringify({ resources: resources.length, errors, diagnostics }, null, 2) + '\n');
  } else {
    for (const d of diagnostics) process.stdout.write(formatDiagnostic(d) + '\n');
    const warnings = diagnostics.length - errors;
    process.stderr.write(`${resources.length} resource(s), ${errors} error(s), ${warnings} warning(s)\n`);
  }
  return errors > 0 ? 1 : 0;
}
