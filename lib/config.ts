// Server configuration: built-in defaults < sandcaster.json < environment < command-line flags.
// (Request fields win over all of these, per run; see lib/request.ts.) Validated strictly at start:
// a bad value stops the server with a message naming the field; it never starts half-configured.
import { ConfigError, envInt, envPick, envStr, type Env } from './config-parse.ts';
import { SANDBOX_PROVIDERS as BUILTIN_SANDBOX_PROVIDERS, type SandboxProviderTable, type SandboxSettings } from './sandbox-providers.ts';
import type { ThinkingLevel } from './model.ts';
import { MODEL_PROVIDER_NAMES, MODEL_PROVIDERS as BUILTIN_MODEL_PROVIDERS, type ModelProviderName, type ModelProviderTable } from './model-providers.ts';
import { LEVELS, type Level } from './log.ts';
import { readFileConfig } from './config-file.ts';
import type { OutputFormat } from './structured.ts';
import type { Price } from './pricing.ts';

/** The built-in provider names, for request schemas; the rows are in lib/model-providers.ts. */
export const MODEL_PROVIDERS: readonly ModelProviderName[] = MODEL_PROVIDER_NAMES;

export { ConfigError };
export { THINKING_LEVELS, compositeSchema } from './config-file.ts';

export interface CompositeSettings {
  maxSandboxes: number;
  maxTotalSpawns: number;
  allowedProviders: string[];
  /** Images/templates the model may name in spawn_sandbox; empty means only the provider's default. */
  allowedTemplates: string[];
}

/** Defaults applied to every run unless the request says otherwise. */
export interface RunDefaults {
  model?: string;
  /** A key of `Config.modelProviders`. */
  provider?: string;
  systemPrompt: string;
  maxTurns: number;
  timeout: number;
  thinkingLevel: ThinkingLevel;
  allowedTools?: string[];
  outputFormat?: OutputFormat;
  sandboxProvider?: string;
  /** Present when composite runs are enabled in sandcaster.json. */
  composite?: CompositeSettings;
  /** Sandbox backends set up on this instance (docker always; e2b with a key): composite's default allowedProviders. */
  configuredSandboxProviders: string[];
}

export interface Config {
  host: string;
  port: number;
  configPath?: string;
  /** Bearer token for the API; undefined = no auth. */
  apiKey?: string;
  /** The model providers this server knows (the built-in table unless loadConfig was given another). */
  modelProviders: ModelProviderTable;
  /** Each provider's key from its `keyEnv` (undefined when unset). */
  keys: Record<string, string | undefined>;
  /** Endpoints set through a provider's `baseUrlEnv`; the others use the row's `endpoint`. */
  baseUrls: Record<string, string>;
  defaults: RunDefaults;
  /** The sandbox-provider rows in use (lib/sandbox-providers.ts, plus any a caller added). */
  sandboxProviders: SandboxProviderTable;
  /** Each backend's resolved settings, by name (its sandcaster.json block plus its env vars). */
  sandboxes: SandboxSettings;
  pricing: Record<string, Price>;
  webhookSecret?: string;
  db: string;
  maxConcurrentRuns: number;
  /** Host memory all sandboxes in flight may hold together (MiB); undefined = what the engine reports. */
  maxSandboxMemoryMb?: number;
  shutdownGraceSeconds: number;
  corsOrigins: string[];
  /**
   * Host names (lowercase, optionally with `:port`) a browser may use to reach an open API (no key), besides
   * IP literals and `localhost`: anything else is refused, so a DNS-rebinding page cannot talk to the server.
   */
  allowedHosts: string[];
  /**
   * Open connections before new ones are refused (`SANDCASTER_MAX_CONNECTIONS`, default 1024). Idle
   * keep-alive sockets are closed first when the cap is hit, so only requests in progress hold a slot for long.
   */
  maxConnections: number;
  /** Time for a client to send the request headers (`SANDCASTER_HEADERS_TIMEOUT_SECONDS`, default 15). */
  headersTimeoutSeconds: number;
  /** Time for a client to send a whole request body (`SANDCASTER_BODY_TIMEOUT_SECONDS`, default 60). */
  bodyTimeoutSeconds: number;
  logLevel: Level;
  /** How long and how much stored events and files are kept (finished runs past either lose them first). */
  retention: { days: number; mb: number };
  callbacks: CallbackSettings;
}

export interface CallbackSettings {
  /** Normalised URL prefixes a `callbackUrl` must start with; empty refuses every callback. */
  allowlist: string[];
  /** Signs each delivery when set. */
  secret?: string;
  /** Waits before each retry; not settable from the environment (tests shorten it). */
  retryDelaysMs: number[];
  /** One delivery attempt, answer included. */
  attemptTimeoutMs: number;
}

export const CALLBACK_RETRY_DELAYS_MS = [1000, 5000, 30_000, 120_000];
export const MIN_CALLBACK_SECRET_CHARS = 16;

export const DEFAULT_SYSTEM_PROMPT = [
  'You are an autonomous agent working in an isolated Linux sandbox.',
  'Your working directory is /workspace; files the user uploaded are there, and files you create or change there are returned to the user.',
  'Use the tools to inspect, run and verify things instead of guessing. When you are done, answer with a concise final response.',
].join(' ');

export const COMPOSITE_DEFAULTS = { maxSandboxes: 3, maxTotalSpawns: 10 } as const;


export interface Flags {
  host?: string;
  port?: number;
  config?: string;
}

// A host name with an optional port (`api.example.com`, `sandcaster:8000`), or a bracketed IPv6 literal.
const HOST_ENTRY = /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

/** `SANDCASTER_ALLOWED_HOSTS` / `allowedHosts`: host names only (no scheme, path or wildcard), lowercased. */
function allowedHosts(field: string, entries: string[]): string[] {
  return entries.map((raw) => {
    const entry = raw.trim().toLowerCase().replace(/\.(?=:\d+$|$)/, ''); // `example.com.` is `example.com`
    if (!HOST_ENTRY.test(entry)) throw new ConfigError(field, `${JSON.stringify(raw)} is not a host name (write it as in a Host header, e.g. api.example.com or api.example.com:8000)`);
    return entry;
  });
}

/**
 * Each comma-separated entry must be an http(s) URL without credentials; it is kept in its normalised form,
 * so a bare origin gets its trailing `/` and `https://hooks.example` cannot match `https://hooks.example.evil`.
 */
function envCallbackAllowlist(env: Env): string[] {
  const raw = envStr(env, 'SANDCASTER_CALLBACK_ALLOWLIST');
  if (!raw) return [];
  return raw.split(',').map((s) => s.trim()).filter(Boolean).map((entry) => {
    let u: URL;
    try {
      u = new URL(entry);
    } catch {
      throw new ConfigError('SANDCASTER_CALLBACK_ALLOWLIST', `${JSON.stringify(entry)} is not a URL; list http(s) URL prefixes separated by commas`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError('SANDCASTER_CALLBACK_ALLOWLIST', `${JSON.stringify(entry)} must be an http or https URL`);
    if (u.username || u.password) throw new ConfigError('SANDCASTER_CALLBACK_ALLOWLIST', `${JSON.stringify(entry)} must not contain credentials`);
    if (u.search || u.hash) throw new ConfigError('SANDCASTER_CALLBACK_ALLOWLIST', `${JSON.stringify(entry)} must not contain a query or fragment`);
    return u.href;
  });
}

function envCallbackSecret(env: Env): string | undefined {
  const raw = env.SANDCASTER_CALLBACK_SECRET;
  if (raw === undefined || raw === '') return undefined;
  if (raw.trim() !== raw) throw new ConfigError('SANDCASTER_CALLBACK_SECRET', 'must not start or end with whitespace');
  if (raw.length < MIN_CALLBACK_SECRET_CHARS) throw new ConfigError('SANDCASTER_CALLBACK_SECRET', `must be at least ${MIN_CALLBACK_SECRET_CHARS} characters, got ${raw.length}`);
  return raw;
}

/** Each row's key and base URL, read through the variables the row names. */
function readModelEnv(env: Env, table: ModelProviderTable): Pick<Config, 'keys' | 'baseUrls'> {
  const keys: Config['keys'] = {};
  const baseUrls: Config['baseUrls'] = {};
  for (const [name, row] of Object.entries(table)) {
    keys[name] = envStr(env, row.keyEnv);
    const url = envStr(env, row.baseUrlEnv);
    if (url === undefined) continue;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new ConfigError(row.baseUrlEnv, `must be an http(s) URL, got ${JSON.stringify(url)}`);
    }
    baseUrls[name] = url;
  }
  return { keys, baseUrls };
}

/**
 * `modelProviders` exists so a provider row can be added without editing lib/ (tests do); production
 * uses the built-in table.
 */
/** Provider tables to use instead of the built-in ones (a caller outside lib/ may add rows). */
export interface ProviderTables {
  modelProviders?: ModelProviderTable;
  sandboxProviders?: SandboxProviderTable;
}

export function loadConfig(flags: Flags = {}, env: Env = process.env, tables: ProviderTables = {}): Config {
  const modelProviders = tables.modelProviders ?? BUILTIN_MODEL_PROVIDERS;
  const sandboxProviders: SandboxProviderTable = tables.sandboxProviders ?? BUILTIN_SANDBOX_PROVIDERS;
  const explicit = flags.config ?? envStr(env, 'SANDCASTER_CONFIG');
  const { path: fileSource, data: file } = readFileConfig(explicit ?? 'sandcaster.json', explicit !== undefined, sandboxProviders);
  if (file.provider !== undefined && !Object.hasOwn(modelProviders, file.provider)) {
    throw new ConfigError(`${fileSource}: provider`, `must be one of ${Object.keys(modelProviders).join(', ')}, got ${JSON.stringify(file.provider)}`);
  }

  // Every env number is validated even when a higher-precedence source wins: a bad value is an error.
  const envPort = envInt(env, 'SANDCASTER_PORT', 0, 65535);
  const envPlainPort = envInt(env, 'PORT', 0, 65535);
  const port = flags.port ?? envPort ?? envPlainPort ?? file.port ?? 8000;
  const { keys, baseUrls } = readModelEnv(env, modelProviders);

  const sandboxNames = Object.keys(sandboxProviders);
  const sandboxName = (field: string, name: string | undefined): string | undefined => {
    if (name !== undefined && !sandboxNames.includes(name)) throw new ConfigError(field, `must be one of ${sandboxNames.join(', ')}, got ${JSON.stringify(name)}`);
    return name;
  };
  const sandboxes = Object.fromEntries(
    Object.entries(sandboxProviders).map(([name, row]) => [name, row.settings(file[name] as Record<string, unknown> | undefined, env)]),
  ) as SandboxSettings;
  const configuredSandboxProviders = sandboxNames.filter((name) => sandboxProviders[name]!.configured(sandboxes[name]));
  for (const [i, name] of (file.composite?.allowedProviders ?? []).entries()) sandboxName(`${fileSource}: composite.allowedProviders[${i}]`, name);
  const composite = file.composite
    ? {
        maxSandboxes: file.composite.maxSandboxes ?? COMPOSITE_DEFAULTS.maxSandboxes,
        maxTotalSpawns: file.composite.maxTotalSpawns ?? COMPOSITE_DEFAULTS.maxTotalSpawns,
        allowedProviders: file.composite.allowedProviders ?? configuredSandboxProviders,
        allowedTemplates: file.composite.allowedTemplates ?? [],
      }
    : undefined;

  const corsEnv = envStr(env, 'SANDCASTER_CORS_ORIGINS');
  const hostsEnv = envStr(env, 'SANDCASTER_ALLOWED_HOSTS');
  return {
    host: flags.host ?? envStr(env, 'SANDCASTER_HOST') ?? file.host ?? '127.0.0.1',
    port,
    configPath: fileSource,
    apiKey: envStr(env, 'SANDCASTER_API_KEY'),
    modelProviders,
    keys,
    baseUrls,
    defaults: {
      model: file.model,
      provider: file.provider,
      // Extends the built-in prompt, never replaces it: the model must still learn about /workspace and the tools.
      systemPrompt: file.systemPrompt?.trim() ? `${DEFAULT_SYSTEM_PROMPT}\n\n${file.systemPrompt}` : DEFAULT_SYSTEM_PROMPT,
      maxTurns: file.maxTurns ?? 50,
      timeout: file.timeout ?? 300,
      thinkingLevel: file.thinkingLevel ?? 'none',
      allowedTools: file.allowedTools,
      outputFormat: file.outputFormat,
      sandboxProvider: envPick(env, 'SANDCASTER_SANDBOX_PROVIDER', sandboxNames) ?? sandboxName(`${fileSource}: sandboxProvider`, file.sandboxProvider),
      composite,
      configuredSandboxProviders,
    },
    sandboxProviders,
    sandboxes,
    pricing: file.pricing ?? {},
    webhookSecret: envStr(env, 'SANDCASTER_E2B_WEBHOOK_SECRET'),
    db: envStr(env, 'SANDCASTER_DB') ?? file.db ?? './data/sandcaster.db',
    maxConcurrentRuns: envInt(env, 'SANDCASTER_MAX_CONCURRENT_RUNS', 1, 100_000) ?? file.maxConcurrentRuns ?? 32,
    maxSandboxMemoryMb: envInt(env, 'SANDCASTER_MAX_SANDBOX_MEMORY_MB', 1, 1 << 30) ?? file.maxSandboxMemoryMb,
    shutdownGraceSeconds: envInt(env, 'SANDCASTER_SHUTDOWN_GRACE_SECONDS', 0, 3600) ?? file.shutdownGraceSeconds ?? 30,
    corsOrigins: corsEnv ? corsEnv.split(',').map((s) => s.trim()).filter(Boolean) : (file.corsOrigins ?? []),
    allowedHosts: hostsEnv
      ? allowedHosts('SANDCASTER_ALLOWED_HOSTS', hostsEnv.split(',').filter((h) => h.trim() !== ''))
      : allowedHosts(`${fileSource}: allowedHosts`, file.allowedHosts ?? []),
    maxConnections: envInt(env, 'SANDCASTER_MAX_CONNECTIONS', 1, 1_000_000) ?? file.maxConnections ?? 1024,
    headersTimeoutSeconds: envInt(env, 'SANDCASTER_HEADERS_TIMEOUT_SECONDS', 1, 600) ?? file.headersTimeoutSeconds ?? 15,
    bodyTimeoutSeconds: envInt(env, 'SANDCASTER_BODY_TIMEOUT_SECONDS', 1, 3600) ?? file.bodyTimeoutSeconds ?? 60,
    logLevel: envPick(env, 'LOG_LEVEL', LEVELS) ?? file.logLevel ?? 'info',
    retention: {
      days: envInt(env, 'SANDCASTER_RETENTION_DAYS', 0, 36_500) ?? 30,
      mb: envInt(env, 'SANDCASTER_RETENTION_MB', 0, 100_000_000) ?? 1024,
    },
    callbacks: {
      allowlist: envCallbackAllowlist(env),
      secret: envCallbackSecret(env),
      retryDelaysMs: CALLBACK_RETRY_DELAYS_MS,
      attemptTimeoutMs: 10_000,
    },
  };
}
