// The client commands and their usage text: what server.ts needs to route to them and to print --help,
// without loading them.

export const CLIENT_COMMANDS = ['run', 'runs', 'logs', 'cancel', 'files'] as const;
export type ClientCommand = (typeof CLIENT_COMMANDS)[number];
export const isClientCommand = (s: string | undefined): s is ClientCommand => CLIENT_COMMANDS.includes(s as ClientCommand);

export const CLIENT_USAGE = `Client commands (talk to a running server):
       sandcaster run "PROMPT" [--file PATH]... [--model M] [--schema FILE] [--out DIR] [--detach] [--json]
       sandcaster runs [--status S] [--limit N] [--before RUN] [--json]
       sandcaster logs RUN [--follow] [--json]
       sandcaster cancel RUN [--json]
       sandcaster files RUN [--out DIR] [--json]

run      Starts a run and streams it: readable on a terminal, one JSON event per line with --json or when
         stdout is not a terminal. Picks a dropped stream up again by itself (Last-Event-ID). Ctrl-C cancels
         the run (press twice to quit without waiting).
           --file PATH    upload a file into /workspace under its base name (repeatable; 20 files, 10 MiB)
           --model M      model alias or id (default: the server's)
           --schema FILE  JSON Schema the final answer must match (outputFormat)
           --out DIR      write the files the run returns into DIR
           --detach       start the run, print its id and return; it goes on without this command
           PROMPT "-"     reads the prompt from stdin
runs     Recent runs, newest first (--limit 1..200, default 20; --before RUN pages on; --status running,
         completed, error or cancelled).
logs     A run's events so far; --follow (-f) stays until the run ends, reattaching as needed.
cancel   Cancels a run in flight.
files    Lists the files a run returned; --out DIR downloads them (checked against their sha256).

Every client command takes --url URL (env SANDCASTER_URL; default http://127.0.0.1:<SANDCASTER_PORT, PORT
or 8000>) and --key KEY (env SANDCASTER_API_KEY; prefer the variable: a flag shows in the process list).
Exit codes: 0 the run ended with result (or the command did what it was asked); 1 the run ended with an
error (logs: once the run's end is shown), or a returned file could not be written; 2 usage; 3 the server
refused (4xx/5xx before any stream); 4 the server could not be reached or the stream not reattached;
130 interrupted (the run was cancelled).
`;
