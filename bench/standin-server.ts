// Benchmark-only entry: the real Sandcaster server (same config loader, routes, run loop, SSE writer, node:http
// adapter, SQLite store and model clients) with an in-process sandbox stand-in instead of Docker/E2B, so that
// what a benchmark measures is the server itself. Never used in production.
// Run: node --import tsx bench/standin-server.ts serve --host 127.0.0.1 --port 0   (env as for server.ts)
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../lib/config.ts';
import * as v from 'valibot';
import { createRegistry } from '../lib/registry.ts';
import { SANDBOX_PROVIDERS, type SandboxProviderDescriptor } from '../lib/sandbox-providers.ts';
import { MODEL_APIS, SANDBOX_MODULES } from '../app.ts';
import type { ExecResult, Sandbox, SandboxProvider } from '../lib/sandbox.ts';
import { parseCli } from '../commands.ts';
import { startServer } from '../server.ts';

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A sandbox that answers every call at once: commands succeed with no output, the workspace is empty. */
class StandinSandbox implements Sandbox {
  readonly id = `standin_${randomBytes(6).toString('hex')}`;
  readonly provider = 'standin';
  async exec(): Promise<ExecResult> {
    await tick();
    return { stdout: '', stderr: '', exitCode: 0, timedOut: false };
  }
  async writeFile(): Promise<void> {
    await tick();
  }
  async readFile(): Promise<Uint8Array> {
    await tick();
    return new Uint8Array();
  }
  async list() {
    await tick();
    return [];
  }
  async destroy(): Promise<void> {
    await tick();
  }
}

const standin: SandboxProvider = {
  name: 'standin',
  defaultImage: 'standin',
  available: async () => true,
  create: async () => {
    await tick();
    return new StandinSandbox();
  },
  reap: async () => 0,
};

/** The stand-in is one more row of the sandbox-provider table, added from outside lib/ like any third backend. */
const standinRow: SandboxProviderDescriptor<Record<string, never>> = {
  fileSchema: v.strictObject({}),
  settings: () => ({}),
  envVars: [],
  configured: () => true,
  auto: 'never',
  trustExplicitChoice: true,
  notUsableHint: 'the benchmark stand-in is always usable',
  secrets: () => [],
};

const cli = parseCli(process.argv.slice(2));
if (!('command' in cli) || cli.command !== 'serve') throw new Error('usage: bench/standin-server.ts serve [--host H] [--port P]');
const env = { ...process.env, SANDCASTER_SANDBOX_PROVIDER: 'standin' };
const config = loadConfig(cli.flags, env, { sandboxProviders: { ...SANDBOX_PROVIDERS, standin: standinRow } });
const registry = createRegistry(config, { modelApis: MODEL_APIS, sandboxModules: { ...SANDBOX_MODULES, standin: async () => ({ createProvider: () => standin }) } });
// SANDCASTER_BENCH_STORE_EVENTS=0: events are not stored, so bench/sse-throughput.ts can show what storing costs.
const storeEvents = process.env.SANDCASTER_BENCH_STORE_EVENTS !== '0';
const running = await startServer(config, { registry: () => registry, storeEvents });
const stop = () => running.shutdown().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
