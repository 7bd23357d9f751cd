// weft: the command line — `up`, `analyze`, `status`, `explain`, `demo`.

import { upCommand, upHelp } from './up.ts';
import { analyzeCommand, analyzeHelp } from './analyze.ts';
import { statusCommand, statusHelp } from './status.ts';
import { UsageError } from './args.ts';

const help = `Weft — a service mesh for AI microservices, configured with Istio's own YAML.

Usage: weft <command> [options]

Commands:
  up        run a mesh on this machine (the embedded demo without -f)
  analyze   validate mesh files without running them
  status    list the proxies of the running mesh and their configuration state
  explain   show how a request would be routed, and why
  demo      play with the running demo: \`weft demo chaos <replica> fail|hang|ok\`

Run \`weft <command> --help\` for a command's options.
`;

const commands: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  up: { run: upCommand, help: upHelp },
  analyze: { run: analyzeCommand, help: analyzeHelp },
  status: { run: statusCommand, help: statusHelp },
  explain: { run: async (argv) => (await import('./explain.ts')).explainCommand(argv), help: 'Run `weft explain --help` for its options.\n' },
  demo: { run: async (argv) => (await import('./demo.ts')).demoCommand(argv), help: 'Run `weft demo --help` for its options.\n' },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help);
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`weft: unknown command "${name}"\n\n${help}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`weft ${name}: ${err.message}\n\n${cmd.help}`);
      return 2;
    }
    throw err;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
