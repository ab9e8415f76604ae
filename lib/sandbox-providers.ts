// The sandbox backends this server knows: one row each, holding everything the rest of the code needs (its
// sandcaster.json block and environment variables, when it counts as configured, whether it is chosen
// automatically, what to tell an operator). Names come from the rows. The code that creates sandboxes lives
// in providers/ and is plugged in by the composition root (app.ts), which the compiler holds to this table.
// How to add one: docs/architecture.md#adding-a-sandbox-provider.
import * as v from 'valibot';
import { ConfigError, envInt, envStr, int, nonEmpty, strictObject, type Env } from './config-parse.ts';
import type { DockerSettings, E2bSettings } from './sandbox.ts';

/** One sandbox backend; `S` is its resolved settings, handed to its provider module. */
export interface SandboxProviderDescriptor<S = unknown> {
  /** Schema of its block in sandcaster.json (the block's key is the provider's name). */
  readonly fileSchema: v.GenericSchema<unknown, Record<string, unknown>>;
  /** Its settings from its sandcaster.json block (already validated) and the environment; throws ConfigError. */
  settings(file: Record<string, unknown> | undefined, env: Env): S;
  /** Environment variables it reads, for the configuration reference and `doctor`. */
  readonly envVars: readonly string[];
  /** Set up on this instance (docker: always; e2b: with a key): the default of composite.allowedProviders. */
  configured(settings: S): boolean;
  /**
   * With nothing naming a backend, rows are tried in table order: `configured` picks this one whenever it is
   * configured; `available` only when it answers a ping; `never` not at all.
   */
  readonly auto: 'configured' | 'available' | 'never';
  /** An explicit choice is used without a ping; a backend that is down then fails the run with a hint. */
  readonly trustExplicitChoice: boolean;
  /** Said in 503 NOT_CONFIGURED when it was chosen but is not usable. */
  readonly notUsableHint: string;
  /** Values in its settings that must never be logged. */
  secrets(settings: S): (string | undefined)[];
}

/** Rows by name; a configuration may add rows of its own (see `loadConfig`). */
export type SandboxProviderTable = Readonly<Record<string, SandboxProviderDescriptor<any>>>;

/** Smallest docker.diskMb: the workspace share must still hold the 10 MiB of uploads a request may carry. */
export const DISK_MB_MIN = 32;

/** Largest docker.warmPool: each idle sandbox is a running container the engine keeps. */
const WARM_POOL_MAX = 256;

/** An OCI runtime's name as engines register it (runc, runsc, crun, kata-runtime...). */
const RUNTIME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const RUNTIME_RULE = 'must be a runtime name the engine knows, e.g. "runsc"';

const dockerFile = strictObject({
  image: v.optional(nonEmpty),
  memoryMb: v.optional(int(16, 1_048_576)),
  diskMb: v.optional(int(DISK_MB_MIN, 1_048_576)),
  cpus: v.optional(v.pipe(v.number(), v.minValue(0.01), v.maxValue(1024))),
  pidsLimit: v.optional(int(8, 1_000_000)),
  network: v.optional(v.picklist(['none', 'bridge'])),
  user: v.optional(v.pipe(v.string(), v.regex(/^\d+(:\d+)?$/, 'must be "uid" or "uid:gid" (numeric)'))),
  readOnlyRootfs: v.optional(v.boolean()),
  runtime: v.optional(v.pipe(v.string(), v.regex(RUNTIME_NAME, RUNTIME_RULE))),
  pullTimeoutSeconds: v.optional(int(1, 86_400)),
  prepull: v.optional(v.pipe(v.array(nonEmpty), v.maxLength(32))),
  warmPool: v.optional(int(0, WARM_POOL_MAX)),
});

const e2bFile = strictObject({
  template: v.optional(nonEmpty),
  allowInternetAccess: v.optional(v.boolean()),
});

const docker: SandboxProviderDescriptor<DockerSettings> = {
  fileSchema: dockerFile,
  settings(raw, env) {
    const file = raw as v.InferOutput<typeof dockerFile> | undefined;
    const diskMb = envInt(env, 'SANDCASTER_DOCKER_DISK_MB', DISK_MB_MIN, 1_048_576);
    const runtime = envStr(env, 'SANDCASTER_DOCKER_RUNTIME');
    const warmPool = envInt(env, 'SANDCASTER_DOCKER_WARM_POOL', 0, WARM_POOL_MAX);
    if (runtime !== undefined && !RUNTIME_NAME.test(runtime)) throw new ConfigError('SANDCASTER_DOCKER_RUNTIME', `${RUNTIME_RULE}, got ${JSON.stringify(runtime)}`);
    return {
      image: envStr(env, 'SANDCASTER_DOCKER_IMAGE') ?? file?.image ?? 'python:3.12-slim',
      memoryMb: file?.memoryMb ?? 1024,
      cpus: file?.cpus ?? 1,
      pidsLimit: file?.pidsLimit ?? 256,
      network: file?.network ?? 'none',
      user: file?.user ?? '1000:1000',
      // Total writable storage per sandbox (workspace, /tmp, /dev/shm, root layer), default 1 GiB.
      diskMb: diskMb ?? file?.diskMb ?? 1024,
      // A writable root layer could only be bounded with a storage-driver quota, which most hosts lack.
      readOnlyRootfs: file?.readOnlyRootfs ?? true,
      // An OCI runtime such as runsc (gVisor); unset, the engine's default (runc).
      runtime: runtime ?? file?.runtime,
      pullTimeoutSeconds: file?.pullTimeoutSeconds ?? 600,
      prepull: file?.prepull ?? [],
      // Started idle sandboxes of `image` kept ready; none by default (each holds a container on the engine).
      warmPool: warmPool ?? file?.warmPool ?? 0,
      host: envStr(env, 'DOCKER_HOST'),
    };
  },
  envVars: ['SANDCASTER_DOCKER_IMAGE', 'SANDCASTER_DOCKER_DISK_MB', 'SANDCASTER_DOCKER_RUNTIME', 'SANDCASTER_DOCKER_WARM_POOL', 'DOCKER_HOST'],
  configured: () => true,
  auto: 'available',
  trustExplicitChoice: true,
  notUsableHint: 'start a Docker engine the server can reach (DOCKER_HOST or /var/run/docker.sock)',
  secrets: () => [],
};

const e2b: SandboxProviderDescriptor<E2bSettings> = {
  fileSchema: e2bFile,
  settings(raw, env) {
    const file = raw as v.InferOutput<typeof e2bFile> | undefined;
    return {
      apiKey: envStr(env, 'E2B_API_KEY'),
      template: envStr(env, 'SANDCASTER_E2B_TEMPLATE') ?? file?.template ?? 'base',
      allowInternetAccess: file?.allowInternetAccess ?? false,
    };
  },
  envVars: ['E2B_API_KEY', 'SANDCASTER_E2B_TEMPLATE', 'E2B_DOMAIN', 'E2B_API_URL', 'E2B_SANDBOX_URL'],
  configured: (s) => Boolean(s.apiKey),
  auto: 'configured',
  trustExplicitChoice: false,
  notUsableHint: 'set E2B_API_KEY',
  secrets: (s) => [s.apiKey],
};

/**
 * The built-in backends, in the order tried when nothing names one (E2B when keyed, else Docker when it answers).
 *
 * @example
 * import { SANDBOX_PROVIDERS } from './sandbox-providers.ts';
 * SANDBOX_PROVIDERS.docker.settings(undefined, {}).diskMb; // 1024
 */
export const SANDBOX_PROVIDERS = { e2b, docker } as const satisfies SandboxProviderTable;

export type BuiltinSandboxProviderName = keyof typeof SANDBOX_PROVIDERS;
/** The resolved settings type of a built-in row. */
export type SettingsOf<K extends BuiltinSandboxProviderName> = (typeof SANDBOX_PROVIDERS)[K] extends SandboxProviderDescriptor<infer S> ? S : never;
/** Settings of every backend in use, by name: typed for the built-ins, opaque for rows added from outside. */
export type SandboxSettings = { [K in BuiltinSandboxProviderName]: SettingsOf<K> } & Readonly<Record<string, unknown>>;
