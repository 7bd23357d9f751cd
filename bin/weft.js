#!/usr/bin/env node
// weft's launcher: checks for a Node.js that runs TypeScript natively, then starts the CLI.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `weft needs Node.js 22.18 or newer (this is ${process.version}). Run it through npm so the pinned Node 24 is used: npx weft ...\n`,
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
