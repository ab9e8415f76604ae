// The client commands of `sandcaster` (run, runs, logs, cancel, files): a command line over the HTTP API of a
// running server. They talk to the server only through HTTP and import nothing of the server's own code.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { cancelCommand } from './cancel.ts';
import { CLIENT_USAGE, type ClientCommand } from './commands.ts';
import { CliError, EXIT, usageError } from './errors.ts';
import { filesCommand } from './files.ts';
import { Client } from './http.ts';
import { logsCommand } from './logs.ts';
import { styler, type Out } from './render.ts';
import { runCommand } from './run.ts';
import { runsCommand } from './runs.ts';

const COMMON = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const SPECS = {
  run: { options: { ...COMMON, file: { type: 'string', multiple: true }, model: { type: 'string', short: 'm' }, schema: { type: 'string' }, out: { type: 'string', short: 'o' }, detach: { type: 'boolean' } }, positionals: 1 },
  runs: { options: { ...COMMON, status: { type: 'string' }, limit: { type: 'string' }, before: { type: 'string' } }, positionals: 0 },
  logs: { options: { ...COMMON, follow: { type: 'boolean', short: 'f' } }, positionals: 1 },
  cancel: { options: { ...COMMON }, positionals: 1 },
  files: { options: { ...COMMON, out: { type: 'string', short: 'o' } }, positionals: 1 },
} as const satisfies Record<ClientCommand, { options: ParseArgsConfig['options']; positionals: number }>;

const ARG_NAME: Record<ClientCommand, string> = { run: 'PROMPT', runs: '', logs: 'RUN', cancel: 'RUN', files: 'RUN' };

/** What every command gets: the client, where to write, and how. */
export interface Ctx {
  client: Client;
  stdout: Out;
  stderr: Out;
  /** Readable output (stdout is a terminal and --json was not given); otherwise JSON lines. */
  human: boolean;
  color: boolean;
  stdin: NodeJS.ReadableStream;
  /** Notes for people on stderr (reattaching, cancelling...). */
  say(message: string): void;
}

export interface Io {
  stdout: Out;
  stderr: Out;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
}

function serverUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const url = flag ?? env.SANDCASTER_URL ?? `http://127.0.0.1:${env.SANDCASTER_PORT || env.PORT || 8000}`;
  const which = flag !== undefined ? '--url' : env.SANDCASTER_URL !== undefined ? 'SANDCASTER_URL' : 'the default URL';
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw usageError(`${which} must be an http(s) URL, got ${JSON.stringify(url)}`);
  const u = new URL(url);
  if (u.search || u.hash) throw usageError(`${which} must be the server's base URL, without a query or fragment`);
  return u.origin + u.pathname.replace(/\/+$/, '');
}

/** Runs one client command; resolves with the exit code. Never throws. */
export async function runClient(argv: string[], io: Io): Promise<number> {
  const errColor = Boolean(io.stderr.isTTY) && !io.env.NO_COLOR;
  const red = styler(errColor);
  const fail = (err: CliError) => {
    io.stderr.write(`sandcaster: ${red('red', err.message)}\n${err.hint ? `  hint: ${err.hint}\n` : ''}`);
    return err.exitCode;
  };
  const command = argv[0] as ClientCommand;
  try {
    const spec = SPECS[command];
    let parsed;
    try {
      parsed = parseArgs({ args: argv.slice(1), options: spec.options, allowPositionals: true, strict: true });
    } catch (err) {
      throw usageError(`${(err as Error).message}\n\n${CLIENT_USAGE}`);
    }
    const values = parsed.values as Record<string, any>;
    if (values.help) {
      io.stdout.write(CLIENT_USAGE);
      return EXIT.OK;
    }
    if (parsed.positionals.length !== spec.positionals) {
      throw usageError(spec.positionals === 0 ? `${command} takes no arguments, got ${JSON.stringify(parsed.positionals)}` : `${command} needs exactly one ${ARG_NAME[command]}, got ${parsed.positionals.length}`);
    }
    const client = new Client(serverUrl(values.url, io.env), values.key ?? io.env.SANDCASTER_API_KEY ?? undefined);
    const human = !values.json && Boolean(io.stdout.isTTY);
    const ctx: Ctx = {
      client,
      stdout: io.stdout,
      stderr: io.stderr,
      stdin: io.stdin,
      human,
      color: human && !io.env.NO_COLOR && io.env.TERM !== 'dumb',
      say: (m) => io.stderr.write(`sandcaster: ${m}\n`),
    };
    const arg = parsed.positionals[0] ?? '';
    switch (command) {
      case 'run':
        return await runCommand(ctx, { prompt: arg, files: values.file ?? [], model: values.model, schema: values.schema, out: values.out, detach: Boolean(values.detach) });
      case 'runs':
        return await runsCommand(ctx, { status: values.status, limit: values.limit, before: values.before });
      case 'logs':
        return await logsCommand(ctx, arg, { follow: Boolean(values.follow) });
      case 'cancel':
        return await cancelCommand(ctx, arg);
      case 'files':
        return await filesCommand(ctx, arg, { out: values.out });
    }
    throw usageError(`unknown command ${JSON.stringify(command)}`);
  } catch (err) {
    if (err instanceof CliError) return fail(err);
    return fail(new CliError(EXIT.RUN_ERROR, `unexpected failure: ${(err as Error)?.stack ?? err}`));
  }
}
