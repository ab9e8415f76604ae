// Entry point of `sandcaster` (the other commands are in commands.ts) and `sandcaster serve`: assembles the
// app (config, run store, providers, routes), serves it over node:http, reaps orphaned sandboxes, and shuts
// down gracefully on SIGTERM/SIGINT (docs/architecture.md#shutdown-and-reaping).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { RunAbort } from './lib/abort.ts';
import { ConfigError, loadConfig, type Config } from './lib/config.ts';
import { lockDatabase } from './lib/db-lock.ts';
import { EventLogs } from './lib/event-log.ts';
import { RunManager } from './lib/inflight.ts';
import { MemoryBudget } from './lib/memory-budget.ts';
import { log, registerSecret, setLogLevel } from './lib/log.ts';
import { frameEvent } from './lib/sse.ts';
import { MAX_BODY_BYTES } from './lib/body.ts';
import { limitConnections, onClientError } from './lib/connections.ts';
import { createListener } from './lib/node-http.ts';
import { Metrics } from './lib/metrics.ts';
import type { Registry } from './lib/registry.ts';
import { Retention, RETENTION_INTERVAL_MS } from './lib/retention.ts';
import type { AppContext } from './lib/app-context.ts';
import { RunStore } from './lib/store.ts';
import { VERSION } from './lib/version.ts';
import { createHandler } from './routes/index.ts';
import { createAppRegistry } from './app.ts';
import { runCommandLine, startupChecks } from './commands.ts';

export const REAP_INTERVAL_MS = 60_000;

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
 * `reapIntervalMs` and `retentionIntervalMs` exist for tests; production always reaps every minute and
 * checks retention hourly. `registry` exists for benchmarks
 * and tests only (bench/standin-server.ts puts an in-process sandbox stand-in behind the real server, so the
 * server itself is what is measured); production never passes it and gets createAppRegistry. `storeEvents:
 * false` exists for the throughput benchmark only (what storing events costs); production always stores them.
 */
export async function startServer(
  config: Config,
  opts: { reapIntervalMs?: number; retentionIntervalMs?: number; registry?: (config: Config) => Registry; storeEvents?: boolean } = {},
): Promise<RunningServer> {
  setLogLevel(config.logLevel);
  const providerSecrets = Object.entries(config.sandboxProviders).flatMap(([name, row]) => row.secrets(config.sandboxes[name]));
  for (const k of [config.apiKey, config.webhookSecret, config.callbacks.secret, ...providerSecrets, ...Object.values(config.keys)]) registerSecret(k);
  const lock = lockDatabase(config.db); // before anything touches the file: a second server must not take it over
  let store: RunStore;
  try {
    store = new RunStore(config.db);
  } catch (err) {
    lock.release();
    throw err;
  }
  // Runs a dead process left running are closed, and their stored logs end with a terminal event, so a reader
  // of their events ends cleanly.
  const interruptedEvent = (id: number, content: string) => Buffer.from(frameEvent(id, { type: 'error', code: 'INTERRUPTED', content }));
  const interrupted = store.markInterrupted(new Date().toISOString(), interruptedEvent);
  if (interrupted) log.warn('runs left running by a previous process marked interrupted', { count: interrupted });
  const runs = new RunManager(config.maxConcurrentRuns);
  const app: AppContext = {
    config,
    store,
    registry: (opts.registry ?? createAppRegistry)(config),
    runs,
    memory: new MemoryBudget(config.maxSandboxMemoryMb),
    metrics: new Metrics({ runsInFlight: () => runs.size, sandboxProviders: Object.keys(config.sandboxProviders) }),
    events: new EventLogs(store, config.db, { storeEvents: opts.storeEvents }),
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
  // Runs whose last events are still being written count as in flight too.
  const retention = new Retention(store, { limits: config.retention, inFlight: () => new Set([...app.runs.runIds(), ...app.events.runIds()]) });
  retention.start(opts.retentionIntervalMs ?? RETENTION_INTERVAL_MS);

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
      await app.registry.closeSandboxProviders(); // warm pools: no more refills, idle sandboxes destroyed
      await retention.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await app.events.close(); // the last events and rows, then the writer thread stops
      store.close();
      lock.release();
      log.info('stopped');
    })());
  return { url, app, server, shutdown };
}

/** A listen failure in words an operator can act on. */
function listenFailure(err: NodeJS.ErrnoException, config: Config): string {
  if (err.code === 'EADDRINUSE') return `port ${config.port} on ${config.host} is in use; stop the other server or pass --port`;
  if (err.code === 'EACCES') return `no permission to listen on port ${config.port} on ${config.host}; pass --port above 1023`;
  if (err.code === 'EADDRNOTAVAIL') return `${config.host} is not an address of this machine; pass --host (e.g. 127.0.0.1 or 0.0.0.0)`;
  return err.message;
}

/** `sandcaster <argv>`: any other command runs and exits in commands.ts; `serve` serves until SIGTERM/SIGINT. */
export async function main(argv: string[]): Promise<void> {
  const flags = await runCommandLine(argv);
  if (!flags) return;
  let config: Config;
  try {
    config = loadConfig(flags);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sandcaster: configuration error: ${err.message}\n`);
    process.exit(1);
  }
  let running: RunningServer;
  try {
    running = await startServer(config);
  } catch (err) {
    process.stderr.write(`sandcaster: cannot start: ${listenFailure(err as NodeJS.ErrnoException, config)}\n`);
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
  void startupChecks(config);
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
