// The agent's tools (docs/api.md#tools). Each runs inside a sandbox through the Sandbox interface;
// a failure is returned as an error result the model sees, never thrown past the agent loop.
import { posix } from 'node:path';
import { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import type { ToolSpec } from './model.ts';
import { SandboxError, WORKSPACE, type Sandbox } from './sandbox.ts';
import { decodeText, truncateMiddle } from './text.ts';
import { toFieldIssues } from './validate.ts';
import type { BASE_TOOL_NAMES } from './tool-names.ts';

export const DEFAULT_COMMAND_TIMEOUT_S = 120;
const MAX_READ_BYTES = 10 * 1024 * 1024;
const MAX_LIST_ENTRIES = 1000;

export interface ToolOutcome {
  content: string;
  isError: boolean;
  /** Only for commands (bash, exec_in). */
  exitCode?: number | null;
}

export interface ToolContext {
  /** The named sandbox of this run ('main' is the primary); throws ToolFailure when there is none. */
  sandbox(name: string): Sandbox;
  /** Milliseconds left before the run's timeout. */
  remainingMs(): number;
  signal: AbortSignal;
}

/** A tool as the agent loop sees it; build one with `defineTool`, which types `run` from the schema. */
export interface ToolDef {
  spec: ToolSpec;
  schema: v.GenericSchema;
  /** Which sandbox an event for this call names (from the raw, unvalidated input). */
  sandboxOf(input: Record<string, unknown>): string;
  run(input: unknown, ctx: ToolContext): Promise<ToolOutcome>;
}

/**
 * Describes a tool once: its valibot input schema is what validates the model's input, what types `run`'s
 * input, and (converted to JSON Schema, descriptions included) what the model is shown.
 *
 * @example
 * const echo = defineTool({
 *   name: 'echo',
 *   description: 'Echo a text.',
 *   input: v.object({ text: v.pipe(v.string(), v.description('What to echo.')) }),
 *   run: async ({ text }) => ({ content: text, isError: false }),
 * });
 */
export function defineTool<S extends v.ObjectSchema<v.ObjectEntries, v.ErrorMessage<v.ObjectIssue> | undefined>>(d: {
  name: string;
  description: string;
  input: S;
  sandboxOf?: (input: Record<string, unknown>) => string;
  run(input: v.InferOutput<S>, ctx: ToolContext): Promise<ToolOutcome>;
}): ToolDef {
  const { $schema: _, ...inputSchema } = toJsonSchema(d.input, { errorMode: 'ignore' }) as Record<string, unknown>;
  return {
    spec: { name: d.name, description: d.description, inputSchema: { ...inputSchema, additionalProperties: false } },
    schema: d.input,
    sandboxOf: d.sandboxOf ?? (() => 'main'),
    run: (input, ctx) => d.run(input as v.InferOutput<S>, ctx),
  };
}

/** A refusal the model should see as a tool error (bad path, limit reached, ...). */
export class ToolFailure extends Error {}

/** Resolves a tool path against /workspace; the sandbox is isolated, so absolute paths anywhere are allowed. */
export function sandboxPath(path: string): string {
  return posix.resolve(WORKSPACE, path);
}

/** A string input that must not be empty, shown to the model with `description`. */
export const requiredText = (description: string) => v.pipe(v.string(), v.nonEmpty('must not be empty'), v.description(description));
const positiveInt = (description: string) => v.pipe(v.number(), v.integer(), v.minValue(1), v.description(description));

/** The inputs of a shell command, for `bash` and composite runs' `exec_in`. */
export const commandInput = {
  command: requiredText('The command line to run.'),
  timeoutSeconds: v.optional(positiveInt(`Timeout in seconds (default ${DEFAULT_COMMAND_TIMEOUT_S}).`)),
};

/** Runs a shell command with the given timeout (capped by the run's remaining time) and formats the result. */
export async function runCommand(sandbox: Sandbox, command: string, timeoutSeconds: number | undefined, ctx: ToolContext): Promise<ToolOutcome> {
  const requested = (timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_S) * 1000;
  const timeoutMs = Math.max(1, Math.min(requested, ctx.remainingMs()));
  const r = await sandbox.exec(command, { timeoutMs, signal: ctx.signal });
  const parts: string[] = [];
  if (r.stdout) parts.push(r.stdout.replace(/\n$/, ''));
  if (r.stderr) parts.push(`[stderr]\n${r.stderr.replace(/\n$/, '')}`);
  if (r.timedOut) {
    parts.push(`[timed out after ${Math.round(timeoutMs / 100) / 10}s; the command's process group was killed]`);
  } else {
    parts.push(`[exit code ${r.exitCode ?? 'unknown'}]`);
  }
  return { content: truncateMiddle(parts.join('\n')), isError: r.timedOut || r.exitCode !== 0, exitCode: r.exitCode };
}

async function readText(sandbox: Sandbox, path: string, signal: AbortSignal): Promise<string> {
  const bytes = await sandbox.readFile(path, { maxBytes: MAX_READ_BYTES, signal });
  const text = decodeText(bytes);
  if (text === null) throw new ToolFailure(`${path} is a binary file (${bytes.length} bytes); not shown`);
  return text;
}

const enc = new TextEncoder();

// Tool calls of one turn run in parallel; writes to the same file are serialised (in call order) so two
// edits of one file in a turn both apply instead of the last read-modify-write winning.
const pathLocks = new WeakMap<Sandbox, Map<string, Promise<unknown>>>();
async function exclusive<T>(sandbox: Sandbox, path: string, fn: () => Promise<T>): Promise<T> {
  let locks = pathLocks.get(sandbox);
  if (!locks) pathLocks.set(sandbox, (locks = new Map()));
  const next = (locks.get(path) ?? Promise.resolve()).catch(() => {}).then(fn);
  locks.set(path, next);
  try {
    return await next;
  } finally {
    if (locks.get(path) === next) locks.delete(path);
  }
}

export const BASE_TOOLS: Record<(typeof BASE_TOOL_NAMES)[number], ToolDef> = {
  bash: defineTool({
    name: 'bash',
    description:
      'Run a shell command (sh -c) in the sandbox, working directory /workspace. Returns stdout, stderr and the exit code. ' +
      `Default timeout ${DEFAULT_COMMAND_TIMEOUT_S}s; on timeout the command and its children are killed.`,
    input: v.object(commandInput),
    run: (input, ctx) => runCommand(ctx.sandbox('main'), input.command, input.timeoutSeconds, ctx),
  }),
  read_file: defineTool({
    name: 'read_file',
    description: 'Read a text file. Relative paths are under /workspace. offset is the first line (1-based), limit the number of lines.',
    input: v.object({ path: requiredText('File path.'), offset: v.optional(positiveInt('First line, 1-based.')), limit: v.optional(positiveInt('Number of lines.')) }),
    async run(input, ctx) {
      const text = await readText(ctx.sandbox('main'), sandboxPath(input.path), ctx.signal);
      if (input.offset === undefined && input.limit === undefined) return { content: truncateMiddle(text), isError: false };
      const lines = text.split('\n');
      const start = (input.offset ?? 1) - 1;
      const slice = lines.slice(start, input.limit === undefined ? undefined : start + input.limit);
      return { content: truncateMiddle(slice.join('\n')), isError: false };
    },
  }),
  write_file: defineTool({
    name: 'write_file',
    description: 'Create or overwrite a text file (parent folders are created). Relative paths are under /workspace.',
    input: v.object({ path: requiredText('File path.'), content: v.pipe(v.string(), v.description('The full new content.')) }),
    async run(input, ctx) {
      const path = sandboxPath(input.path);
      const bytes = enc.encode(input.content);
      const sandbox = ctx.sandbox('main');
      await exclusive(sandbox, path, () => sandbox.writeFile(path, bytes, { signal: ctx.signal }));
      return { content: `wrote ${bytes.length} bytes to ${path}`, isError: false };
    },
  }),
  edit_file: defineTool({
    name: 'edit_file',
    description: 'Replace one exact, unique occurrence of oldText with newText in a file. Fails if oldText is missing or occurs more than once.',
    input: v.object({
      path: requiredText('File path.'),
      oldText: requiredText('Exact text to replace.'),
      newText: v.pipe(v.string(), v.description('Replacement.')),
    }),
    async run(input, ctx) {
      const sandbox = ctx.sandbox('main');
      const path = sandboxPath(input.path);
      return exclusive(sandbox, path, async () => {
        const text = await readText(sandbox, path, ctx.signal);
        const first = text.indexOf(input.oldText);
        if (first < 0) throw new ToolFailure(`oldText was not found in ${path}`);
        if (text.indexOf(input.oldText, first + 1) >= 0) throw new ToolFailure(`oldText occurs more than once in ${path}; include more context to make it unique`);
        const next = text.slice(0, first) + input.newText + text.slice(first + input.oldText.length);
        await sandbox.writeFile(path, enc.encode(next), { signal: ctx.signal });
        return { content: `edited ${path}`, isError: false };
      });
    },
  }),
  list_files: defineTool({
    name: 'list_files',
    description: 'List files and folders under a folder (default /workspace), recursively, with types and sizes.',
    input: v.object({ path: v.optional(requiredText('Folder path (default /workspace).')) }),
    async run(input, ctx) {
      const root = sandboxPath(input.path ?? '.');
      const entries = (await ctx.sandbox('main').list(root, { signal: ctx.signal })).sort((a, b) => a.path.localeCompare(b.path));
      if (entries.length === 0) return { content: `${root} is empty`, isError: false };
      const lines = entries.slice(0, MAX_LIST_ENTRIES).map((e) => (e.type === 'dir' ? `dir   ${e.path}/` : `${e.type.padEnd(5)} ${e.path} (${e.size} bytes)`));
      if (entries.length > MAX_LIST_ENTRIES) lines.push(`[... ${entries.length - MAX_LIST_ENTRIES} more entries not shown ...]`);
      return { content: truncateMiddle(`${root}:\n${lines.join('\n')}`), isError: false };
    },
  }),
};

/** Validates the input and runs the tool; every failure becomes an error outcome for the model. */
export async function runTool(def: ToolDef, input: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutcome> {
  const parsed = v.safeParse(def.schema, input);
  if (!parsed.success) {
    const why = toFieldIssues(parsed.issues).map((i) => `${i.path}: ${i.message}`).join('; ');
    return { content: `invalid input for ${def.spec.name}: ${why}`, isError: true };
  }
  try {
    return await def.run(parsed.output, ctx);
  } catch (err) {
    if (err instanceof ToolFailure) return { content: err.message, isError: true };
    if (err instanceof SandboxError && err.code !== 'SANDBOX_LOST' && err.code !== 'SANDBOX_ERROR') return { content: err.message, isError: true };
    throw err; // sandbox lost, engine gone, abort: the run decides
  }
}
