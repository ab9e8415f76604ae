// Entry point: `sandcaster serve [--host HOST] [--port PORT] [--config FILE]`, `sandcaster doctor`, `sandcaster wait`,
// and the client commands (`run`, `runs`, `logs`, `cancel`, `files`; cli/) that talk to a running server.
// Assembles the app (config, run store, providers, routes), serves it over node:http, reaps orphaned
// sandboxes, and shuts down gracefully on SIGTERM/SIGINT (docs/architecture.md#shutdown-and-reaping).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RunAbort } from './lib/abort.ts';
import { ConfigError, loadConfig, type Config, type Flags } from './lib/config.ts';
import { lockDatabase } from './lib/db-lock.ts';
import { allPass, checkConfig, formatCheck, runChecks } from './lib/doctor.ts';
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
import { waitReady } from './lib/wait-ready.ts';
import { createHandler } from './routes/index.ts';
import { CLIENT_USAGE, isClientCommand } from './cli/commands.ts';
import { createAppRegistry } from './app.ts';

export const REAP_INTERVAL_MS = 60_000;

const USAGE = `Usage: sandcaster serve [--host HOST] [--port PORT] [--config FILE]
       sandcaster doctor [--config FILE]
       sandcaster wait [--url URL] [--timeout SECONDS]
       sandcaster --help | --version

serve    Serves the Sandcaster API (default 127.0.0.1:8000).
           --host HOST     address to listen on (env SANDCASTER_HOST)
           --port PORT     port to listen on (env SANDCASTER_PORT or PORT)
           --config FILE   sandcaster.json to read (env SANDCASTER_CONFIG; default ./sandcaster.json if present)
doctor   Checks the configuration, the Docker engine, E2B, the model keys and the database; one line per
         check with what to do. Exit 0 when nothing FAILs.
wait     Waits until a server answers GET /health with 200 (for scripts that start one in the background).
           --url URL          default http://127.0.0.1:<SANDCASTER_PORT, PORT or 8000>
           --timeout SECONDS  default 30; exit 1 if not ready by then

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

export type Cli =
  | { command: 'serve'; flags: Flags }
  | { command: 'doctor'; flags: Flags }
  | { command: 'wait'; url: string; timeoutSecs: number }
  | { command: 'help' }
  | { command: 'version' }
  | { error: string };

const COMMAND_FLAGS = { serve: ['host', 'port', 'config'], doctor: ['config'], wait: ['url', 'timeout'] } as const;

export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Cli {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        config: { type: 'string' },
        url: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    return { error: (err as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const command = positionals[0] ?? 'serve';
  if (positionals.length > 1 || !Object.hasOwn(COMMAND_FLAGS, command)) return { error: `unknown command: ${positionals.join(' ')}` };
  const allowed: readonly string[] = COMMAND_FLAGS[command as keyof typeof COMMAND_FLAGS];
  const stray = Object.keys(values).find((k) => !allowed.includes(k));
  if (stray) return { error: `--${stray} does not apply to ${command}` };
  if (command === 'wait') {
    const port = env.SANDCASTER_PORT || env.PORT || '8000';
    const url = values.url ?? `http://127.0.0.1:${port}`;
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) return { error: `--url must be an http(s) URL, got ${JSON.stringify(url)}` };
    const timeout = values.timeout ?? '30';
    if (!/^\d+$/.test(timeout) || Number(timeout) < 1 || Number(timeout) > 3600) return { error: `--timeout must be a whole number of seconds from 1 to 3600, got ${JSON.stringify(timeout)}` };
    return { command, url, timeoutSecs: Number(timeout) };
  }
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
  return command === 'doctor' ? { command, flags } : { command: 'serve', flags };
}

/** Loaded on use: `--help` and `wait` need no engine client. */
const doctorProbes = async (config: Config) => (await import('./providers/doctor-probes.ts')).createDoctorProbes(config);

/** `sandcaster doctor`: every check, one line each on stdout; exit 0 only when none fails. */
async function doctor(flags: Flags): Promise<never> {
  const { check, config } = checkConfig(() => loadConfig(flags));
  const checks = [check, ...(config ? await runChecks(config, await doctorProbes(config), { database: true }) : [])];
  const text = checks.map((c) => formatCheck(c) + '\n').join('');
  return new Promise(() => process.stdout.write(text, () => process.exit(allPass(checks) ? 0 : 1)));
}

/** The doctor's checks at `serve` start, after the listen: each failure is a warning, never a reason to stop. */
async function startupChecks(config: Config): Promise<void> {
  try {
    for (const c of await runChecks(config, await doctorProbes(config), { database: false })) {
      if (c.status === 'ok') continue;
      const fields = { check: c.name, status: c.status, found: c.found, fix: c.fix };
      if (c.status === 'FAIL') log.warn('startup check failed', fields);
      else log.info('startup check', fields);
    }
  } catch (err) {
    log.warn('startup checks could not run', { error: err });
  }
}

/** A listen failure in words an operator can act on. */
function listenFailure(err: NodeJS.ErrnoException, config: Config): string {
  if (err.code === 'EADDRINUSE') return `port ${config.port} on ${config.host} is in use; stop the other server or pass --port`;
  if (err.code === 'EACCES') return `no permission to listen on port ${config.port} on ${config.host}; pass --port above 1023`;
  if (err.code === 'EADDRNOTAVAIL') return `${config.host} is not an address of this machine; pass --host (e.g. 127.0.0.1 or 0.0.0.0)`;
  return err.message;
}

/** A client command (cli/), loaded only when one is asked for; exits with its code. */
async function client(argv: string[]): Promise<never> {
  const { runClient } = await import('./cli/main.ts');
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1)); // `| head`
  const code = await runClient(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });
  return new Promise(() => process.stdout.write('', () => process.exit(code)));
}

export async function main(argv: string[]): Promise<void> {
  if (isClientCommand(argv[0])) return client(argv);
  const cli = parseCli(argv);
  if ('error' in cli) {
    process.stderr.write(`sandcaster: ${cli.error}\n\n${USAGE}${CLIENT_USAGE}`);
    process.exit(2);
  }
  if (cli.command === 'help' || cli.command === 'version') return void process.stdout.write(cli.command === 'help' ? USAGE + CLIENT_USAGE : `${VERSION}\n`);
  if (cli.command === 'doctor') return doctor(cli.flags);
  if (cli.command === 'wait') {
    const r = await waitReady(cli.url, cli.timeoutSecs * 1000);
    if (r.ready) return void process.stderr.write(`sandcaster: ${cli.url} is ready\n`);
    process.stderr.write(`sandcaster: ${cli.url} is not ready after ${cli.timeoutSecs} s (last: ${r.last}); is the server starting? its log says why not\n`);
    process.exit(1);
  }
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
