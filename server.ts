// Entry point: `sandcaster serve [--host HOST] [--port PORT] [--config FILE]`.
// Assembles the app (config, run store, providers, routes), serves it over node:http, reaps orphaned
// sandboxes, and shuts down gracefully on SIGTERM/SIGINT (SPEC sections 2, 6, 9).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RunAbort } from './lib/abort.ts';
import { ConfigError, loadConfig, type Config, type Flags } from './lib/config.ts';
import { lockDatabase } from './lib/db-lock.ts';
import { EventLogs } from './lib/event-log.ts';
import { RunManager } from './lib/inflight.ts';
import { log, registerSecret, setLogLevel } from './lib/log.ts';
import { frameEvent } from './lib/sse.ts';
import { sendFetchResponse, toFetchRequest } from './lib/node-http.ts';
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
  /** Graceful shutdown (SPEC section 9); resolves when every run is closed and every sandbox destroyed. */
  shutdown(): Promise<void>;
}

/** Reaps sandboxes of this instance that belong to no run in flight, on every backend in use. */
async function reap(app: AppContext, backends: ('docker' | 'e2b')[]): Promise<void> {
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

/**
 * `reapIntervalMs` exists for tests; production always reaps every minute. `registry` exists for benchmarks
 * and tests only (bench/standin-server.ts puts an in-process sandbox stand-in behind the real server, so the
 * server itself is what is measured); production never passes it and gets createAppRegistry. `storeEvents:
 * false` exists for the throughput benchmark only (what storing events costs); production always stores them.
 */
export async function startServer(
  config: Config,
  opts: { reapIntervalMs?: number; registry?: (config: Config) => Registry; storeEvents?: boolean } = {},
): Promise<RunningServer> {
  setLogLevel(config.logLevel);
  for (const k of [config.apiKey, config.webhookSecret, config.e2b.apiKey, ...Object.values(config.keys)]) registerSecret(k);
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
  const app: AppContext = {
    config,
    store,
    registry: (opts.registry ?? createAppRegistry)(config),
    runs: new RunManager(config.maxConcurrentRuns),
    events: new EventLogs(store, config.db, { storeEvents: opts.storeEvents }),
  };
  const handle = createHandler(app);

  const server = createServer({ noDelay: true, requestTimeout: 0 }, (req, res) => {
    const controller = new AbortController();
    res.once('close', () => controller.abort());
    const request = toFetchRequest(req, controller.signal);
    handle(request)
      .then((response) => sendFetchResponse(res, response, req.method === 'HEAD'))
      .catch((err) => {
        log.error('response failed', { error: err });
        res.destroy();
      });
  });
  server.keepAliveTimeout = 65_000; // longer than common load balancer idle timeouts
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
  const backends = (): ('docker' | 'e2b')[] => {
    const set = new Set(app.registry.loadedSandboxProviders().map((p) => p.name));
    if (config.e2b.apiKey) set.add('e2b');
    set.add('docker');
    return [...set];
  };
  const startupReap = reap(app, backends());
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
      await app.events.close(); // the last events and rows, then the writer thread stops
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
