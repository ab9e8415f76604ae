// Server configuration: built-in defaults < sandcaster.json < environment < command-line flags.
// (Request fields win over all of these, per run; see lib/request.ts.) Validated strictly at start:
// a bad value stops the server with a message naming the field; it never starts half-configured.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as v from 'valibot';
import type { DockerSettings, E2bSettings, SandboxProviderName } from './sandbox.ts';
import { SANDBOX_PROVIDERS } from './sandbox.ts';
import type { ModelProviderName, ThinkingLevel } from './model.ts';
import { LEVELS, type Level } from './log.ts';
import { parseWith } from './validate.ts';
import { ALL_TOOL_NAMES } from './tools.ts';
import { compileSchema, outputFormatSchema, type OutputFormat } from './structured.ts';
import { priceSchema, type Price } from './pricing.ts';

export const MODEL_PROVIDERS: readonly ModelProviderName[] = ['anthropic', 'openai', 'google', 'openrouter'];
export const THINKING_LEVELS: readonly ThinkingLevel[] = ['none', 'low', 'medium', 'high'];

export class ConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface CompositeSettings {
  maxSandboxes: number;
  maxTotalSpawns: number;
  allowedProviders: SandboxProviderName[];
  /** Images/templates the model may name in spawn_sandbox; empty means only the provider's default. */
  allowedTemplates: string[];
}

/** Defaults applied to every run unless the request says otherwise. */
export interface RunDefaults {
  model?: string;
  provider?: ModelProviderName;
  systemPrompt: string;
  maxTurns: number;
  timeout: number;
  thinkingLevel: ThinkingLevel;
  allowedTools?: string[];
  outputFormat?: OutputFormat;
  sandboxProvider?: SandboxProviderName;
  /** Present when composite runs are enabled in sandcaster.json. */
  composite?: CompositeSettings;
  /** Sandbox backends set up on this instance (docker always; e2b with a key): composite's default allowedProviders. */
  configuredSandboxProviders: SandboxProviderName[];
}

export interface Config {
  host: string;
  port: number;
  configPath?: string;
  /** Bearer token for the API; undefined = no auth. */
  apiKey?: string;
  keys: Partial<Record<ModelProviderName, string>>;
  baseUrls: Partial<Record<ModelProviderName, string>>;
  defaults: RunDefaults;
  docker: DockerSettings;
  e2b: E2bSettings;
  pricing: Record<string, Price>;
  webhookSecret?: string;
  db: string;
  maxConcurrentRuns: number;
  shutdownGraceSeconds: number;
  corsOrigins: string[];
  logLevel: Level;
}

export const DEFAULT_SYSTEM_PROMPT = [
  'You are an autonomous agent working in an isolated Linux sandbox.',
  'Your working directory is /workspace; files the user uploaded are there, and files you create or change there are returned to the user.',
  'Use the tools to inspect, run and verify things instead of guessing. When you are done, answer with a concise final response.',
].join(' ');

export const COMPOSITE_DEFAULTS = { maxSandboxes: 3, maxTotalSpawns: 10 } as const;

const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const nonEmpty = v.pipe(v.string(), v.trim(), v.nonEmpty());
// valibot's strictObject accepts arrays (`[]` parses as `{}`); objects here must be plain JSON objects.
const plainObject = v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'must be an object');
const strictObject = <E extends v.ObjectEntries>(entries: E) => v.pipe(plainObject, v.strictObject(entries));

export const compositeSchema = strictObject({
  maxSandboxes: v.optional(int(1, 20)),
  maxTotalSpawns: v.optional(int(1, 100)),
  allowedProviders: v.optional(v.array(v.picklist(SANDBOX_PROVIDERS))),
  allowedTemplates: v.optional(v.array(nonEmpty)),
});

const fileSchema = strictObject({
  host: v.optional(nonEmpty),
  port: v.optional(int(0, 65535)),
  logLevel: v.optional(v.picklist(LEVELS)),
  db: v.optional(nonEmpty),
  maxConcurrentRuns: v.optional(int(1, 100_000)),
  shutdownGraceSeconds: v.optional(int(0, 3600)),
  corsOrigins: v.optional(v.array(nonEmpty)),
  sandboxProvider: v.optional(v.picklist(SANDBOX_PROVIDERS)),
  model: v.optional(nonEmpty),
  provider: v.optional(v.picklist(MODEL_PROVIDERS)),
  systemPrompt: v.optional(v.string()),
  maxTurns: v.optional(int(1, 500)),
  timeout: v.optional(int(5, 3600)),
  thinkingLevel: v.optional(v.picklist(THINKING_LEVELS)),
  allowedTools: v.optional(v.array(v.picklist(ALL_TOOL_NAMES))),
  outputFormat: v.optional(outputFormatSchema),
  docker: v.optional(
    strictObject({
      image: v.optional(nonEmpty),
      memoryMb: v.optional(int(16, 1_048_576)),
      cpus: v.optional(v.pipe(v.number(), v.minValue(0.01), v.maxValue(1024))),
      pidsLimit: v.optional(int(8, 1_000_000)),
      network: v.optional(v.picklist(['none', 'bridge'])),
      user: v.optional(v.pipe(v.string(), v.regex(/^\d+(:\d+)?$/, 'must be "uid" or "uid:gid" (numeric)'))),
      readOnlyRootfs: v.optional(v.boolean()),
    }),
  ),
  e2b: v.optional(
    strictObject({
      template: v.optional(nonEmpty),
      allowInternetAccess: v.optional(v.boolean()),
    }),
  ),
  composite: v.optional(compositeSchema),
  pricing: v.optional(v.record(nonEmpty, priceSchema)),
});

export interface Flags {
  host?: string;
  port?: number;
  config?: string;
}

type Env = Record<string, string | undefined>;

function envInt(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function envPick<T extends string>(env: Env, name: string, options: readonly T[]): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!options.includes(raw as T)) throw new ConfigError(name, `must be one of ${options.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

const envStr = (env: Env, name: string) => (env[name] && env[name]!.trim() !== '' ? env[name]!.trim() : undefined);

function readFileConfig(path: string | undefined, explicit: boolean): { path?: string; data: v.InferOutput<typeof fileSchema> } {
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
  const parsed = parseWith(fileSchema, json);
  if (!parsed.ok) {
    const first = parsed.issues[0]!;
    const rest = parsed.issues.length > 1 ? ` (and ${parsed.issues.length - 1} more)` : '';
    throw new ConfigError(`${full}: ${first.path}`, first.message + rest);
  }
  // The operator's schema is compiled here, once, at start (the event loop serves nothing yet).
  const schema = parsed.value.outputFormat;
  const compiled = schema ? compileSchema(schema) : undefined;
  if (compiled && !compiled.ok) throw new ConfigError(`${full}: ${compiled.issues[0]!.path}`, compiled.issues[0]!.message);
  return { path: full, data: parsed.value };
}

export function loadConfig(flags: Flags = {}, env: Env = process.env): Config {
  const explicit = flags.config ?? envStr(env, 'SANDCASTER_CONFIG');
  const { path: fileSource, data: file } = readFileConfig(explicit ?? 'sandcaster.json', explicit !== undefined);

  // Every env number is validated even when a higher-precedence source wins: a bad value is an error.
  const envPort = envInt(env, 'SANDCASTER_PORT', 0, 65535);
  const envPlainPort = envInt(env, 'PORT', 0, 65535);
  const port = flags.port ?? envPort ?? envPlainPort ?? file.port ?? 8000;
  const keys: Config['keys'] = {
    anthropic: envStr(env, 'ANTHROPIC_API_KEY'),
    openai: envStr(env, 'OPENAI_API_KEY'),
    google: envStr(env, 'GOOGLE_API_KEY'),
    openrouter: envStr(env, 'OPENROUTER_API_KEY'),
  };
  const baseUrls: Config['baseUrls'] = {};
  for (const p of MODEL_PROVIDERS) {
    const name = `${p.toUpperCase()}_BASE_URL`;
    const url = envStr(env, name);
    if (url === undefined) continue;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new ConfigError(name, `must be an http(s) URL, got ${JSON.stringify(url)}`);
    }
    baseUrls[p] = url;
  }

  const e2bKey = envStr(env, 'E2B_API_KEY');
  const configuredSandboxProviders: SandboxProviderName[] = e2bKey ? ['docker', 'e2b'] : ['docker'];
  const composite = file.composite
    ? {
        maxSandboxes: file.composite.maxSandboxes ?? COMPOSITE_DEFAULTS.maxSandboxes,
        maxTotalSpawns: file.composite.maxTotalSpawns ?? COMPOSITE_DEFAULTS.maxTotalSpawns,
        allowedProviders: file.composite.allowedProviders ?? configuredSandboxProviders,
        allowedTemplates: file.composite.allowedTemplates ?? [],
      }
    : undefined;

  const corsEnv = envStr(env, 'SANDCASTER_CORS_ORIGINS');
  return {
    host: flags.host ?? envStr(env, 'SANDCASTER_HOST') ?? file.host ?? '127.0.0.1',
    port,
    configPath: fileSource,
    apiKey: envStr(env, 'SANDCASTER_API_KEY'),
    keys,
    baseUrls,
    defaults: {
      model: file.model,
      provider: file.provider,
      systemPrompt: file.systemPrompt ?? DEFAULT_SYSTEM_PROMPT,
      maxTurns: file.maxTurns ?? 50,
      timeout: file.timeout ?? 300,
      thinkingLevel: file.thinkingLevel ?? 'none',
      allowedTools: file.allowedTools,
      outputFormat: file.outputFormat,
      sandboxProvider: envPick(env, 'SANDCASTER_SANDBOX_PROVIDER', SANDBOX_PROVIDERS) ?? file.sandboxProvider,
      composite,
      configuredSandboxProviders,
    },
    docker: {
      image: envStr(env, 'SANDCASTER_DOCKER_IMAGE') ?? file.docker?.image ?? 'python:3.12-slim',
      memoryMb: file.docker?.memoryMb ?? 1024,
      cpus: file.docker?.cpus ?? 1,
      pidsLimit: file.docker?.pidsLimit ?? 256,
      network: file.docker?.network ?? 'none',
      user: file.docker?.user ?? '1000:1000',
      readOnlyRootfs: file.docker?.readOnlyRootfs ?? false,
      host: envStr(env, 'DOCKER_HOST'),
    },
    e2b: {
      apiKey: e2bKey,
      template: envStr(env, 'SANDCASTER_E2B_TEMPLATE') ?? file.e2b?.template ?? 'base',
      allowInternetAccess: file.e2b?.allowInternetAccess ?? false,
    },
    pricing: file.pricing ?? {},
    webhookSecret: envStr(env, 'SANDCASTER_E2B_WEBHOOK_SECRET'),
    db: envStr(env, 'SANDCASTER_DB') ?? file.db ?? './data/sandcaster.db',
    maxConcurrentRuns: envInt(env, 'SANDCASTER_MAX_CONCURRENT_RUNS', 1, 100_000) ?? file.maxConcurrentRuns ?? 32,
    shutdownGraceSeconds: envInt(env, 'SANDCASTER_SHUTDOWN_GRACE_SECONDS', 0, 3600) ?? file.shutdownGraceSeconds ?? 30,
    corsOrigins: corsEnv ? corsEnv.split(',').map((s) => s.trim()).filter(Boolean) : (file.corsOrigins ?? []),
    logLevel: envPick(env, 'LOG_LEVEL', LEVELS) ?? file.logLevel ?? 'info',
  };
}
