// Composite-run tools (docs/api.md#composite-runs): the model spawns, drives and kills secondary sandboxes and moves
// files between any two of them (across providers too) through the providers' file APIs.
import { posix } from 'node:path';
import * as v from 'valibot';
import type { CompositeSettings } from './config.ts';
import { MAIN, type SandboxPool } from './pool.ts';
import { WORKSPACE, type FileEntry, type SandboxProviderName } from './sandbox.ts';
import { ToolFailure, commandInput, defineTool, requiredText, runCommand, type ToolDef, type ToolOutcome } from './tools.ts';
import { compileGlob, MAX_GLOB_CHARS, type Glob } from './glob.ts';

export const TRANSFER_LIMITS = { fileBytes: 25 * 1024 * 1024, callBytes: 50 * 1024 * 1024 };


/** Kept for existing callers: the linear-time matcher of lib/glob.ts (it has RegExp's `test`). */
export const globToRegExp = compileGlob;

/** Paths longer than this cannot be opened (PATH_MAX), so they are never matched. */
const MAX_PATH_CHARS = 4096;
/** Bounds on one transfer_files call's paths; a glob match costs at most glob x path length steps. */
export const TRANSFER_PATTERNS = { count: 100, pathChars: MAX_PATH_CHARS, globChars: MAX_GLOB_CHARS };
const isGlob = (p: string) => p.includes('*') || p.includes('?');
/** Matching yields to the event loop after this long, so a large listing never stalls other runs. */
const SLICE_MS = 20;

/** A path inside /workspace, relative to it, or a ToolFailure for an escape. */
function insideWorkspace(path: string, what: string): string {
  const abs = posix.resolve(WORKSPACE, path);
  if (abs !== WORKSPACE && !abs.startsWith(WORKSPACE + '/')) throw new ToolFailure(`${what} "${path}" is outside /workspace`);
  return posix.relative(WORKSPACE, abs);
}

export function compositeTools(pool: SandboxPool, settings: CompositeSettings, defaultProvider: SandboxProviderName): ToolDef[] {
  const sandbox = requiredText('A sandbox of this run by name ("main" is the primary).');
  return [
    defineTool({
      name: 'spawn_sandbox',
      description:
        `Create a secondary sandbox with its own /workspace. At most ${settings.maxSandboxes} alive at once and ${settings.maxTotalSpawns} per run. ` +
        `Providers: ${settings.allowedProviders.join(', ')}.` +
        (settings.allowedTemplates.length ? ` Templates besides the default: ${settings.allowedTemplates.join(', ')}.` : ''),
      input: v.object({
        name: requiredText('Unique name, [a-zA-Z0-9_-]{1,64}.'),
        // Shown as an enum, checked by the pool, whose refusal names what is allowed.
        provider: v.optional(
          v.pipe(requiredText("The sandbox provider (default: the run's own)."), v.metadata(settings.allowedProviders.length ? { enum: settings.allowedProviders } : {})),
        ),
        template: v.optional(requiredText('Image or template; default: the configured one.')),
      }),
      sandboxOf: (input) => String(input.name ?? ''),
      async run(input) {
        const m = await pool.spawn(input.name, input.provider as SandboxProviderName | undefined, input.template, defaultProvider);
        return { content: `sandbox "${m.name}" is ready (${m.provider}, ${m.image}, id ${m.sandbox.id})`, isError: false };
      },
    }),
    defineTool({
      name: 'exec_in',
      description: 'Run a shell command in the named sandbox ("main" is the primary), working directory /workspace.',
      input: v.object({ sandbox, ...commandInput }),
      sandboxOf: (input) => String(input.sandbox ?? MAIN),
      run: (input, ctx) => runCommand(pool.get(input.sandbox), input.command, input.timeoutSeconds, ctx),
    }),
    defineTool({
      name: 'transfer_files',
      description:
        'Copy files from one sandbox to another. paths are files or globs (*, ?, **) relative to the source /workspace; ' +
        'each keeps its relative path under destDir (default /workspace) in the target. 25 MiB per file, 50 MiB per call.',
      input: v.object({
        from: requiredText('The source sandbox.'),
        to: requiredText('The target sandbox.'),
        paths: v.pipe(v.array(requiredText('A file, folder or glob under the source /workspace.')), v.minLength(1, 'must name at least one path')),
        destDir: v.optional(requiredText('Folder in the target (default /workspace).')),
      }),
      sandboxOf: (input) => String(input.from ?? MAIN),
      run: (input, ctx) => transfer(pool, input, ctx.signal),
    }),
    defineTool({
      name: 'kill_sandbox',
      description: 'Destroy a secondary sandbox.',
      input: v.object({ name: requiredText('The secondary sandbox to destroy.') }),
      sandboxOf: (input) => String(input.name ?? ''),
      async run(input) {
        await pool.kill(input.name);
        return { content: `sandbox "${input.name}" destroyed`, isError: false };
      },
    }),
    defineTool({
      name: 'list_sandboxes',
      description: 'List the live sandboxes of this run.',
      input: v.object({}),
      async run() {
        return { content: JSON.stringify(pool.list()), isError: false };
      },
    }),
  ];
}

/** transfer_files: the paths checked and matched, the sizes bounded, then each file read and written. */
async function transfer(pool: SandboxPool, input: { from: string; to: string; paths: string[]; destDir?: string }, signal: AbortSignal): Promise<ToolOutcome> {
  const source = pool.get(input.from);
  const target = pool.get(input.to);
  const dest = posix.join(WORKSPACE, insideWorkspace(input.destDir ?? WORKSPACE, 'destDir'));
  if (input.paths.length > TRANSFER_PATTERNS.count) throw new ToolFailure(`at most ${TRANSFER_PATTERNS.count} paths per call, got ${input.paths.length}`);
  for (const p of input.paths) {
    const max = isGlob(p) ? TRANSFER_PATTERNS.globChars : TRANSFER_PATTERNS.pathChars;
    if (p.length > max) throw new ToolFailure(`a ${isGlob(p) ? 'glob' : 'path'} is at most ${max} characters, got ${p.length}`);
  }
  const patterns = input.paths.map((p) => insideWorkspace(p, 'path'));
  const files = (await source.list(WORKSPACE)).filter((e) => e.type === 'file');
  const chosen = await matching(files, patterns, signal);
  if (chosen.length === 0) throw new ToolFailure(`no file in ${input.from}:/workspace matches ${input.paths.join(', ')}`);
  const tooBig = chosen.find((f) => f.size > TRANSFER_LIMITS.fileBytes);
  if (tooBig) throw new ToolFailure(`${tooBig.path} is ${tooBig.size} bytes; the limit is ${TRANSFER_LIMITS.fileBytes} per file`);
  const total = chosen.reduce((n, f) => n + f.size, 0);
  if (total > TRANSFER_LIMITS.callBytes) throw new ToolFailure(`the files total ${total} bytes; the limit is ${TRANSFER_LIMITS.callBytes} per call`);
  for (const f of chosen) {
    const bytes = await source.readFile(`${WORKSPACE}/${f.path}`, { maxBytes: TRANSFER_LIMITS.fileBytes });
    await target.writeFile(posix.join(dest, f.path), bytes);
  }
  return { content: `copied ${chosen.length} file(s), ${total} bytes, from ${input.from} to ${input.to}:${dest}:\n${chosen.map((f) => f.path).join('\n')}`, isError: false };
}

/**
 * The files that a pattern names: a file, a folder (everything under it; "" is all of /workspace) or a glob.
 * Each glob is compiled once; the loop yields every SLICE_MS and stops when the run ends.
 */
async function matching(files: FileEntry[], patterns: string[], signal: AbortSignal): Promise<FileEntry[]> {
  const globs: [string, Glob | null][] = patterns.map((p) => [p, isGlob(p) ? compileGlob(p) : null]);
  const chosen: FileEntry[] = [];
  let sliceStart = performance.now();
  for (const f of files) {
    if (f.path.length <= MAX_PATH_CHARS && globs.some(([p, g]) => p === '' || p === f.path || f.path.startsWith(p + '/') || g?.test(f.path))) chosen.push(f);
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise((r) => setImmediate(r));
      signal.throwIfAborted();
      sliceStart = performance.now();
    }
  }
  return chosen;
}
