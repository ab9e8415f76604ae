// The command line: its parsing, and every command but `serve` (server.ts): `doctor`, `wait`, `--help`,
// `--version`, and the client commands (cli/), each loaded only when it is asked for.
import { parseArgs } from 'node:util';
import { loadConfig, type Config, type Flags } from './lib/config.ts';
import { allPass, checkConfig, formatCheck, runChecks } from './lib/doctor.ts';
import { log } from './lib/log.ts';
import { VERSION } from './lib/version.ts';
import { waitReady } from './lib/wait-ready.ts';
import { CLIENT_USAGE, isClientCommand } from './cli/commands.ts';

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
export async function startupChecks(config: Config): Promise<void> {
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

/** A client command (cli/), loaded only when one is asked for; exits with its code. */
async function client(argv: string[]): Promise<never> {
  const { runClient } = await import('./cli/main.ts');
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1)); // `| head`
  const code = await runClient(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });
  return new Promise(() => process.stdout.write('', () => process.exit(code)));
}

/** Runs the command `argv` names; for `serve` it returns the flags to serve with, and serving is the caller's. */
export async function runCommandLine(argv: string[]): Promise<Flags | undefined> {
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
  return cli.flags;
}
