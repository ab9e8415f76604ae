// Exit codes of the client commands, and the error that carries one up to the command line.

export const EXIT = {
  /** The run ended with `result`; or the command did what it was asked. */
  OK: 0,
  /** The run ended with `error` (or ended without a terminal event), or a returned file could not be written. */
  RUN_ERROR: 1,
  /** Bad command line: unknown flag, missing argument, unreadable --file or --schema. */
  USAGE: 2,
  /** The server answered with an error before any stream (4xx/5xx: bad key, unknown run, invalid request...). */
  REFUSED: 3,
  /** The server could not be reached, or a dropped stream could not be picked up again. */
  CONNECTION: 4,
  /** Interrupted (Ctrl-C), after cancelling the run. */
  INTERRUPTED: 130,
} as const;

export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(EXIT.USAGE, message);
