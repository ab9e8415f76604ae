// `sandcaster doctor`, and the same checks at `serve` start: what a server needs from its surroundings,
// one line per check with what was found and what to do. Probes of the outside world (the Docker engine,
// E2B) are passed in by the composition root, so each check can be tried against any answer.
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { deadline, raceAbort } from './abort.ts';
import type { Config } from './config.ts';
import { DatabaseLockedError, lockDatabase, type DatabaseLock } from './db-lock.ts';
import { providerForModel } from './model-providers.ts';
import { resolveAlias } from './models.ts';

/** `warn` passes (it is worth knowing, nothing is broken); `FAIL` does not. */
export type CheckStatus = 'ok' | 'warn' | 'FAIL';

export interface Check {
  status: CheckStatus;
  name: string;
  found: string;
  fix?: string;
}

export interface DockerProbe {
  /** Where the engine is, for messages. */
  readonly where: string;
  version(): Promise<{ version: string; apiVersion: string }>;
  hasImage(image: string): Promise<boolean>;
  runtimes(): Promise<string[]>;
}

export interface DoctorProbes {
  docker: DockerProbe;
  /** One cheap authenticated E2B call, its request bounded by PROBE_TIMEOUT_MS; rejects when E2B refuses the key or does not answer. */
  e2b(apiKey: string): Promise<void>;
  /** Defaults to the server's own lock (lib/db-lock.ts). */
  lockDatabase?(path: string): DatabaseLock;
}

/** How long one call to the outside world may take. */
export const PROBE_TIMEOUT_MS = 5000;
/**
 * The E2B probe bounds its own HTTP call by PROBE_TIMEOUT_MS, but first loads the e2b SDK, which alone can take
 * seconds on a busy host; this only stops a probe that never settles.
 */
const E2B_GUARD_MS = 30_000;

/** The first line of an error, with its cause's code (fetch says only "fetch failed"). */
function message(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string } };
  const text = (e?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
  return e?.cause?.code && !text.includes(e.cause.code) ? `${text}: ${e.cause.code}` : text;
}

function bounded<T>(p: Promise<T>, ms = PROBE_TIMEOUT_MS): Promise<T> {
  const limit = deadline(ms, undefined, () => new Error(`no answer within ${ms / 1000} s`));
  return raceAbort(p, limit.signal).finally(() => limit.clear());
}

export const formatCheck = (c: Check) => `${c.status.padEnd(4)} ${c.name}: ${c.found}${c.fix ? `. Fix: ${c.fix}` : ''}`;

/** Loads the configuration the way `serve` does. */
export function checkConfig(load: () => Config): { check: Check; config?: Config } {
  try {
    const config = load();
    const found = config.configPath ? `loaded ${config.configPath}` : 'no sandcaster.json; built-in defaults and the environment';
    return { check: { status: 'ok', name: 'config', found }, config };
  } catch (err) {
    return { check: { status: 'FAIL', name: 'config', found: message(err), fix: 'correct the field named (or remove it to get the default); `serve` refuses to start until then' } };
  }
}

/** Docker problems fail only where runs would use Docker; with E2B chosen they are worth a warning. */
const dockerNeeded = (config: Config) =>
  config.defaults.sandboxProvider === 'docker' || (!config.defaults.sandboxProvider && !config.sandboxes.e2b.apiKey) || Boolean(config.defaults.composite?.allowedProviders.includes('docker'));

export async function checkDockerEngine(config: Config, docker: DockerProbe): Promise<Check> {
  try {
    const v = await bounded(docker.version());
    return { status: 'ok', name: 'docker engine', found: `Docker ${v.version} (API ${v.apiVersion}) at ${docker.where}` };
  } catch (err) {
    const needed = dockerNeeded(config);
    return {
      status: needed ? 'FAIL' : 'warn',
      name: 'docker engine',
      found: `cannot reach the Docker engine at ${docker.where} (${message(err)})${needed ? '' : '; runs use E2B, so only Docker sandboxes are affected'}`,
      fix: 'start the engine (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at one that answers; "permission denied" on the socket means this user needs the docker group',
    };
  }
}

export async function checkDockerImage(config: Config, docker: DockerProbe): Promise<Check> {
  const image = config.sandboxes.docker.image;
  const name = 'docker image';
  try {
    if (await bounded(docker.hasImage(image))) return { status: 'ok', name, found: `${image} is on the Docker host` };
    return { status: 'warn', name, found: `${image} is not on the Docker host; the first run will pull it`, fix: `\`docker pull ${image}\` now, or set SANDCASTER_DOCKER_IMAGE (docker.image) to an image the host has` };
  } catch (err) {
    return { status: dockerNeeded(config) ? 'FAIL' : 'warn', name, found: `could not look up ${image} (${message(err)})`, fix: 'check the Docker engine (see the line above)' };
  }
}

/** Only when a runtime is configured (e.g. runsc for gVisor). */
export async function checkDockerRuntime(runtime: string, docker: DockerProbe): Promise<Check> {
  const name = 'docker runtime';
  try {
    const known = await bounded(docker.runtimes());
    if (known.includes(runtime)) return { status: 'ok', name, found: `${runtime} is registered with the engine` };
    return {
      status: 'FAIL',
      name,
      found: `the engine does not know runtime ${runtime} (it has: ${known.join(', ') || 'none'})`,
      fix: `register it under "runtimes" in /etc/docker/daemon.json (e.g. {"runtimes": {"${runtime}": {"path": "/usr/local/bin/${runtime}"}}}) and restart dockerd, or unset docker.runtime`,
    };
  } catch (err) {
    return { status: 'FAIL', name, found: `could not list the engine's runtimes (${message(err)})`, fix: 'check the Docker engine (see above)' };
  }
}

/** Only when docker.prepull lists images: which are on the host already (the server pulls the rest at start). */
export async function checkPrepull(images: readonly string[], docker: DockerProbe): Promise<Check> {
  const name = 'docker prepull';
  try {
    const missing: string[] = [];
    for (const image of images) if (!(await bounded(docker.hasImage(image)))) missing.push(image);
    if (missing.length === 0) return { status: 'ok', name, found: `all ${images.length} image(s) of docker.prepull are on the Docker host` };
    return {
      status: 'warn',
      name,
      found: `not on the Docker host yet: ${missing.join(', ')} (serve pulls them in the background at start; GET /health shows each one's state)`,
      fix: `\`docker pull ${missing[0]}\` now, or let the server pull them`,
    };
  } catch (err) {
    return { status: 'FAIL', name, found: `could not look up the docker.prepull images (${message(err)})`, fix: 'check the Docker engine (see above)' };
  }
}

export async function checkE2b(config: Config, probe: DoctorProbes['e2b']): Promise<Check> {
  const key = config.sandboxes.e2b.apiKey;
  const name = 'e2b';
  if (!key) {
    if (config.defaults.sandboxProvider === 'e2b') return { status: 'FAIL', name, found: 'sandboxProvider is e2b but E2B_API_KEY is not set', fix: 'set E2B_API_KEY (keys are at https://e2b.dev/dashboard), or choose docker' };
    return { status: 'ok', name, found: 'not configured (E2B_API_KEY unset); Docker sandboxes only' };
  }
  try {
    await bounded(probe(key), E2B_GUARD_MS);
    return { status: 'ok', name, found: `E2B answered and accepted E2B_API_KEY (template ${config.sandboxes.e2b.template})` };
  } catch (err) {
    const refused = /authentication/i.test((err as Error)?.name ?? '');
    return {
      status: 'FAIL',
      name,
      found: `${refused ? 'E2B refused E2B_API_KEY' : 'could not reach E2B'} (${message(err).split(key).join('[redacted]')})`,
      fix: 'check E2B_API_KEY (https://e2b.dev/dashboard) and that this machine reaches E2B (E2B_DOMAIN if self-hosted)',
    };
  }
}

/** One line per model provider; a missing key fails only when nothing else can serve runs. */
export function checkModelKeys(config: Config): Check[] {
  const table = config.modelProviders;
  const d = config.defaults;
  const configured = d.provider ?? (d.model ? providerForModel(resolveAlias(d.model), table) : undefined);
  const anyKey = Object.keys(table).some((p) => config.keys[p]);
  const checks = Object.entries(table).map(([provider, row]): Check => {
    const name = `model key ${provider}`;
    const endpoint = config.baseUrls[provider] ? ` (endpoint ${config.baseUrls[provider]} from ${row.baseUrlEnv})` : '';
    if (config.keys[provider]) return { status: 'ok', name, found: `${row.keyEnv} is set${endpoint}` };
    const isDefault = provider === configured;
    return {
      status: isDefault ? 'FAIL' : 'warn',
      name,
      found: `${row.keyEnv} is not set; ${isDefault ? 'the configured default model needs it, so runs without a model answer' : `requests for ${provider} models answer`} 503 NOT_CONFIGURED`,
      fix: `set ${row.keyEnv} (${row.keyHint})`,
    };
  });
  if (!anyKey) {
    const envs = Object.values(table).filter((r) => r.auto).map((r) => r.keyEnv);
    checks.push({ status: 'FAIL', name: 'model keys', found: 'no model provider has a key; every /query answers 503 NOT_CONFIGURED', fix: `set one of ${envs.join(', ')}` });
  }
  return checks;
}

/** The database file can be written and no other live server holds it. */
export function checkDatabase(config: Config, lock: (path: string) => DatabaseLock = lockDatabase): Check {
  const name = 'database';
  if (config.db === ':memory:') return { status: 'ok', name, found: 'in memory (run history is lost at exit)' };
  const file = resolve(config.db);
  let dir = dirname(file);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const fix = 'set SANDCASTER_DB (db) to a file in a folder this user can write, or fix the permissions';
  try {
    accessSync(dir, constants.W_OK);
    if (existsSync(file)) accessSync(file, constants.R_OK | constants.W_OK);
  } catch (err) {
    return { status: 'FAIL', name, found: `${existsSync(file) ? file : dir} is not writable (${message(err)})`, fix };
  }
  if (dir !== dirname(file)) return { status: 'ok', name, found: `${file} will be created (its folder too)` };
  try {
    lock(file).release();
  } catch (err) {
    if (err instanceof DatabaseLockedError) {
      return { status: 'FAIL', name, found: err.message, fix: `stop the other server${err.pid ? ` (kill ${err.pid})` : ''}, or give this one its own SANDCASTER_DB` };
    }
    return { status: 'FAIL', name, found: `could not open ${file} (${message(err)})`, fix };
  }
  return { status: 'ok', name, found: `${file} is writable and no other server holds it` };
}

/**
 * Every check after the configuration's. `database: false` for a starting server, which holds the lock itself.
 * Docker's image and runtime are looked at only when the engine answers.
 */
export async function runChecks(config: Config, probes: DoctorProbes, opts: { database: boolean }): Promise<Check[]> {
  const docker = async (): Promise<Check[]> => {
    const engine = await checkDockerEngine(config, probes.docker);
    if (engine.status !== 'ok') return [engine];
    const { runtime, prepull } = config.sandboxes.docker;
    return [
      engine,
      await checkDockerImage(config, probes.docker),
      ...(runtime ? [await checkDockerRuntime(runtime, probes.docker)] : []),
      ...(prepull?.length ? [await checkPrepull(prepull, probes.docker)] : []),
    ];
  };
  const [dockerChecks, e2b] = await Promise.all([docker(), checkE2b(config, probes.e2b)]);
  return [
    ...dockerChecks,
    e2b,
    ...checkModelKeys(config),
    ...(opts.database ? [checkDatabase(config, probes.lockDatabase?.bind(probes))] : []),
  ];
}

/** True when nothing failed (`warn` passes). */
export const allPass = (checks: Check[]) => checks.every((c) => c.status !== 'FAIL');
