// Reading mesh files: multi-document YAML text → resources and diagnostics; files and folders → the same.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { Diagnostic, LoadResult, Resource } from './types.ts';
import { Codes, compareDiagnostics, makeDiagnostic } from './diagnostics.ts';
import { posAt } from './positions.ts';
import { resourceFromDocument } from './resource.ts';

/**
 * Parses every YAML document in `text`. A malformed document is reported (YAML_SYNTAX, with its
 * line:col) and skipped; the other documents in the same text still load. `file` is only used
 * in diagnostics and to resolve a Workload's relative `cwd`.
 */
export function parseText(text: string, file: string): LoadResult {
  const lineCounter = new LineCounter();
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  // YAML 1.2 core schema (what Kubernetes tools emit today); positions come from the LineCounter.
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  for (const doc of docs) {
    const src = { file, lineCounter, doc };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        diagnostics.push(makeDiagnostic('error', Codes.YAML_SYNTAX, '', e.message.split('\n')[0]!, posAt(src, e.pos[0])));
      }
      continue;
    }
    for (const w of doc.warnings) {
      diagnostics.push(makeDiagnostic('warning', Codes.YAML_SYNTAX, '', w.message.split('\n')[0]!, posAt(src, w.pos[0])));
    }
    const resource = resourceFromDocument(src, diagnostics);
    if (resource) resources.push(resource);
  }
  diagnostics.sort(compareDiagnostics);
  return { resources, diagnostics };
}

const MESH_FILE = /\.ya?ml$/i;

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** All *.yaml / *.yml files under a folder, sorted; hidden folders (.git...) are skipped. */
async function walk(dir: string, seen: Set<string>, out: string[]): Promise<void> {
  const real = await realpath(dir);
  if (seen.has(real)) return; // a symlink loop
  seen.add(real);
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => byName(a.name, b.name));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const target = await stat(path).catch(() => undefined);
      isDir = target?.isDirectory() ?? false;
      isFile = target?.isFile() ?? false;
    }
    if (isDir && !entry.name.startsWith('.')) await walk(path, seen, out);
    else if (isFile && MESH_FILE.test(entry.name)) out.push(path);
  }
}

function fileProblem(code: string, file: string, text: string): Diagnostic {
  return makeDiagnostic('error', code, '', text, { file, line: 1, col: 1 });
}

/**
 * Loads files and folders (folders recursively, only *.yaml / *.yml, in sorted order). Paths
 * keep the order they were given in, since the first VirtualService for a host wins; a path that
 * does not exist is a FILE_NOT_FOUND error. Diagnostics are sorted by file, line and column.
 */
export async function loadPaths(paths: string[]): Promise<LoadResult> {
  const files: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const seenDirs = new Set<string>();
  for (const path of paths) {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => err);
    if (info instanceof Error) {
      if (info.code === 'ENOENT' || info.code === 'ENOTDIR') diagnostics.push(fileProblem(Codes.FILE_NOT_FOUND, path, 'no such file or directory'));
      else diagnostics.push(fileProblem(Codes.FILE_UNREADABLE, path, info.message));
      continue;
    }
    if (info.isDirectory()) {
      try {
        await walk(path, seenDirs, files);
      } catch (err) {
        diagnostics.push(fileProblem(Codes.FILE_UNREADABLE, path, (err as Error).message));
      }
    } else {
      files.push(path); // named explicitly: read it whatever its extension
    }
  }

  const resources: Resource[] = [];
  const seenFiles = new Set<string>();
  for (const file of files) {
    const real = await realpath(file).catch(() => file);
    if (seenFiles.has(real)) continue; // the same file reached twice (a folder and the file itself)
    seenFiles.add(real);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      diagnostics.push(fileProblem(Codes.FILE_UNREADABLE, file, (err as Error).message));
      continue;
    }
    const result = parseText(text, file);
    resources.push(...result.resources);
    diagnostics.push(...result.diagnostics);
  }
  diagnostics.sort(compareDiagnostics);
  return { resources, diagnostics };
}
