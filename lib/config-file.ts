// sandcaster.json: its schema (the server's own settings plus one block per sandbox-provider row) and reading
// it strictly, so a mistyped or unknown field stops the server naming the field. docs/configuration.md lists
// every field.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as v from 'valibot';
import { ConfigError, int, nonEmpty, strictObject } from './config-parse.ts';
import { LEVELS } from './log.ts';
import type { ThinkingLevel } from './model.ts';
import { priceSchema } from './pricing.ts';
import type { SandboxProviderTable } from './sandbox-providers.ts';
import { compileSchema, outputFormatSchema } from './structured.ts';
import { ALL_TOOL_NAMES } from './tool-names.ts';
import { parseWith } from './validate.ts';

export const THINKING_LEVELS: readonly ThinkingLevel[] = ['none', 'low', 'medium', 'high'];

export const compositeSchema = strictObject({
  maxSandboxes: v.optional(int(1, 20)),
  maxTotalSpawns: v.optional(int(1, 100)),
  allowedProviders: v.optional(v.array(nonEmpty)), // names of the table, checked in loadConfig
  allowedTemplates: v.optional(v.array(nonEmpty)),
});

const baseFileEntries = {
  host: v.optional(nonEmpty),
  port: v.optional(int(0, 65535)),
  logLevel: v.optional(v.picklist(LEVELS)),
  db: v.optional(nonEmpty),
  maxConcurrentRuns: v.optional(int(1, 100_000)),
  maxSandboxMemoryMb: v.optional(int(1, 1 << 30)),
  shutdownGraceSeconds: v.optional(int(0, 3600)),
  corsOrigins: v.optional(v.array(nonEmpty)),
  allowedHosts: v.optional(v.array(nonEmpty)),
  maxConnections: v.optional(int(1, 1_000_000)),
  headersTimeoutSeconds: v.optional(int(1, 600)),
  bodyTimeoutSeconds: v.optional(int(1, 3600)),
  sandboxProvider: v.optional(nonEmpty), // one of the sandbox table's names, checked in loadConfig
  model: v.optional(nonEmpty),
  provider: v.optional(nonEmpty), // one of the table's names, checked in loadConfig
  systemPrompt: v.optional(v.string()),
  maxTurns: v.optional(int(1, 500)),
  timeout: v.optional(int(5, 3600)),
  thinkingLevel: v.optional(v.picklist(THINKING_LEVELS)),
  allowedTools: v.optional(v.array(v.picklist(ALL_TOOL_NAMES))),
  outputFormat: v.optional(outputFormatSchema),
  composite: v.optional(compositeSchema),
  pricing: v.optional(v.record(nonEmpty, priceSchema)),
};

/** The whole sandcaster.json schema: the settings above plus one block per sandbox-provider row, under its name. */
const fileSchemaFor = (sandboxProviders: SandboxProviderTable) =>
  strictObject({ ...baseFileEntries, ...Object.fromEntries(Object.entries(sandboxProviders).map(([name, row]) => [name, v.optional(row.fileSchema)])) });
export type FileConfig = v.InferOutput<ReturnType<typeof strictObject<typeof baseFileEntries>>> & Record<string, unknown>;

/** Reads and validates the file; a missing file is an error only when it was named explicitly. */
export function readFileConfig(path: string | undefined, explicit: boolean, sandboxProviders: SandboxProviderTable): { path?: string; data: FileConfig } {
  if (!path) return { data: {} };
  const full = resolve(path);
  if (!existsSync(full)) {
    if (explicit) throw new ConfigError('config', `file not found: ${full}`);
    return { data: {} };
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(full, 'utf8'));
  } catch (err) {
    throw new ConfigError(full, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = parseWith(fileSchemaFor(sandboxProviders), json);
  if (!parsed.ok) {
    const first = parsed.issues[0]!;
    const rest = parsed.issues.length > 1 ? ` (and ${parsed.issues.length - 1} more)` : '';
    throw new ConfigError(`${full}: ${first.path}`, first.message + rest);
  }
  // The operator's schema is compiled here, once, at start (the event loop serves nothing yet).
  const schema = parsed.value.outputFormat;
  const compiled = schema ? compileSchema(schema) : undefined;
  if (compiled && !compiled.ok) throw new ConfigError(`${full}: ${compiled.issues[0]!.path}`, compiled.issues[0]!.message);
  return { path: full, data: parsed.value as FileConfig };
}

