// Entry point: `sandcaster serve [--host HOST] [--port PORT] [--config FILE]`.
// Assembles the app (config, run store, providers, routes), serves it over node:http, reaps orphaned
// sandboxes, and shuts down gracefully on SIGTERM/SIGINT (docs/architecture.md#shutdown-and-reaping).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RunAbort } from './lib/abort.ts';
import { ConfigError, loadConfig, type Config, type Flags } from './lib/config.ts';
import { lockDatabase } from './lib/db-lock.ts';
import { RunManager } from './lib/inflight.ts';
import { MemoryBudget } from './lib/memory-budget.ts';
import { log, registerSecret, setLogLevel } from './lib/log.ts';
import { MAX_BODY_BYTES } from './lib/body.ts';
import { createListener, limitConnections, onClientError } from './lib/node-http.ts';
import type { Registry } from './lib/registry.ts';
import type { AppContext } from './lib/run.ts';
import { RunStore } from './lib/store.ts';
import { VERSION } from './lib/version.ts';
import { createHandler } from './routes/index.ts';
import { createAppRegistry } from './app.ts';

export const REAP_INTERVAL_MS = 60_000;

const USAGE = `Usage: sandcaster serve [--host HOST] [--port PORT] [--config FILE]
       sandcaster --help | --version

Serves the Sandcaster API (default 127.0.0.1:8000).
  --host HOST     address to listen on (env SANDCASTER_HOST)
  --port PORT     port to listen on (env SANDCASTER_PORT or PORT)
  --config FILE   sandcaster.json to read (env SANDCASTER_CONFIG; default ./sandcaster.json if present)
`;

export interface RunningServer {
  url: string;
  app: AppContext;
  server: Server;
  /** Graceful shutdown (docs/architecture.md#shutdown-and-reaping): resolves when every run is closed and every sandbox destroyed. */
  shutdown(): Promise<void>;
}

/** Reaps sandboxes of this instance that belong to no run in flight, on every backend in use. */
async function reap(app: AppContext, backends: string[]): Promise<void> {
  for (const name of backends) {
    try {
      const provider = await app.registry.sandboxProvider(name);
      if (!(await provider.available())) continue;
      const n = await provider.reap(app.store.instanceId, app.runs.runIds());
      if (n > 0) log.warn('reaped orphaned sandboxes', { provider: name, count: n });
    } catch (err) {
      log.warn('reaping failed', { provider: name, error: err });
    }
  }
}

/** Without SANDCASTER_MAX_SANDBOX_MEMORY_MB, the budget is the total memory the sandbox host reports. */
async function learnMemoryLimit(app: AppContext): Promise<void> {
  for (const name of app.config.defaults.configuredSandboxProviders) {
    try {
      const mb = await (await app.registry.sandboxProvider(name)).hostMemoryMb?.();
      if (mb !== undefined) {
        app.memory.setLimit(mb);
        log.info('sandbox memory budget', { provider: name, limitMb: mb });
        return;
      }
    } catch (err) {
      log.debug('no host memory figure', { provider: name, error: err });
    }
  }
}

/**
 * `reapIntervalMs` exists for tests; production always reaps every minute. `registry` exists for benchmarks
 * and tests only (bench/standin-server.ts puts an in-process sandbox stand-in behind the real server, so the
 * server itself is what is measured); production never passes it and gets createAppRegistry.
 */
export async function startServer(config: Config, opts: { reapIntervalMs?: number; registry?: (config: Config) => Registry } = {}): Promise<RunningServer> {
  setLogLevel(config.logLevel);
  const providerSecrets = Object.entries(config.sandboxProviders).flatMap(([name, row]) => row.secrets(config.sandboxes[name]));
  for (const k of [config.apiKey, config.webhookSecret, ...providerSecrets, ...Object.values(config.keys)]) registerSecret(k);
  const lock = lockDatabase(config.db); // before anything touches the file: a second server must not take it over
  let store: RunStore;
  try {
    store = new RunStore(config.db);
  } catch (err) {
    lock.release();
    throw err;
  }
  const interrupted = store.markInterrupted(new Date().toISOString());
  if (interrupted) log.warn('runs left running by a previous process marked interrupted', { count: interrupted });
  const app: AppContext = {
    config,
    store,
    registry: (opts.registry ?? createAppRegistry)(config),
    runs: new RunManager(config.maxConcurrentRuns),
    memory: new MemoryBudget(config.maxSandboxMemoryMb),
  };
  const handle = createHandler(app);

  const headersTimeout = config.headersTimeoutSeconds * 1000;
  const bodyTimeoutMs = config.bodyTimeoutSeconds * 1000;
  const server = createServer(
    {
      noDelay: true,
      // Slow senders are cut off: headers must arrive within headersTimeout, a whole request within both
      // limits (the body stream enforces its own limit with a clear 408; this is the backstop for bodies
      // nobody reads). Node stops timing a request once it is fully received, so a long SSE response is
      // never cut by these.
      headersTimeout,
      requestTimeout: headersTimeout + bodyTimeoutMs,
      connectionsCheckingInterval: 1000,
      // Checked by the edge instead, so a missing Host gets the JSON error shape like every other 400.
      requireHostHeader: false,
    },
    createListener(handle, { maxBodyBytes: MAX_BODY_BYTES, bodyTimeoutMs }),
  );
  server.keepAliveTimeout = 65_000; // longer than common load balancer idle timeouts
  limitConnections(server, config.maxConnections);
  server.on('clientError', onClientError(store.instanceId));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    store.close();
    lock.release();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  log.info('listening', { url, version: VERSION, instanceId: store.instanceId, db: config.db, config: config.configPath });
  if (!config.apiKey) log.warn('SANDCASTER_API_KEY is not set: the API is open to anyone who can reach it');

  // Backends to reap: those that could hold our sandboxes (configured or in use).
  const backends = (): string[] => {
    const set = new Set(app.registry.loadedSandboxProviders().map((p) => p.name));
    for (const name of config.defaults.configuredSandboxProviders) set.add(name);
    return [...set];
  };
  const startupReap = reap(app, backends());
  if (config.maxSandboxMemoryMb === undefined) void learnMemoryLimit(app);
  const reaper = setInterval(() => void reap(app, backends()), opts.reapIntervalMs ?? REAP_INTERVAL_MS);
  reaper.unref();

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () =>
    (shuttingDown ??= (async () => {
      app.runs.draining = true;
      clearInterval(reaper);
      log.info('draining', { runsInFlight: app.runs.size, graceSeconds: config.shutdownGraceSeconds });
      if (!(await app.runs.waitIdle(config.shutdownGraceSeconds * 1000))) {
        log.warn('grace period over; ending runs in flight', { runsInFlight: app.runs.size });
        app.runs.abortAll(new RunAbort('SHUTDOWN', 'the server is shutting down'));
        await app.runs.waitIdle(30_000);
      }
      await startupReap;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      store.close();
      lock.release();
      log.info('stopped');
    })());
  return { url, app, server, shutdown };
}

export function parseCli(argv: string[]): { command: 'serve'; flags: Flags } | { command: 'help' | 'version' } | { error: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { host: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
    });
  } catch (err) {
    return { error: (err as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== 'serve')) return { error: `unknown command: ${positionals.join(' ')}` };
  const flags: Flags = {};
  if (values.host !== undefined) {
    if (values.host.trim() === '') return { error: '--host must not be empty' };
    flags.host = values.host;
  }
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) return { error: `--port must be a number from 0 to 65535, got ${JSON.stringify(values.port)}` };
    flags.port = Number(values.port);
  }
  if (values.config !== undefined) flags.config = values.config;
  return { command: 'serve', flags };
}

export async function main(argv: string[]): Promise<void> {
  const cli = parseCli(argv);
  if ('error' in cli) {
    process.stderr.write(`sandcaster: ${cli.error}\n\n${USAGE}`);
    process.exit(2);
  }
  if (cli.command !== 'serve') return void process.stdout.write(cli.command === 'help' ? USAGE : `${VERSION}\n`);
  let config: Config;
  try {
    config = loadConfig(cli.flags);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sandcaster: configuration error: ${err.message}\n`);
    process.exit(1);
  }
  let running: RunningServer;
  try {
    running = await startServer(config);
  } catch (err) {
    process.stderr.write(`sandcaster: cannot start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const stop = (signal: string) => {
    log.info('signal received', { signal });
    running.shutdown().then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
