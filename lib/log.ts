// JSON-lines logger: one object per line on stdout, nothing else there (docs/configuration.md#logs).
// Callers pass fields, never secrets or file contents; `redact` is a last line of defence for known keys.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LEVELS = Object.keys(ORDER) as Level[];

let threshold = ORDER.info;
let write: (line: string) => void = (line) => process.stdout.write(line);
const secrets = new Set<string>();

export function setLogLevel(level: Level): void {
  threshold = ORDER[level];
}

/** For tests: capture lines instead of writing to stdout. */
export function setLogSink(sink: ((line: string) => void) | null): void {
  write = sink ?? ((line) => process.stdout.write(line));
}

/** Values that must never appear in a log line (API keys); replaced by "[redacted]" if they ever do. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 8) secrets.add(value);
}

function redact(line: string): string {
  for (const s of secrets) if (line.includes(s)) line = line.split(s).join('[redacted]');
  return line;
}

function emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (ORDER[level] < threshold) return;
  const obj: Record<string, unknown> = { time: new Date().toISOString(), level, msg };
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      obj[k] = v instanceof Error ? v.message : v;
    }
  }
  write(redact(JSON.stringify(obj)) + '\n');
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => emit('debug', msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => emit('info', msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => emit('warn', msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => emit('error', msg, fields),
};

/**
 * `fn` made safe to call from a stream or engine callback, where a throw would crash the process: a throw is
 * logged as a warning `msg` (with `fields`) and goes no further.
 */
export function guarded<A extends unknown[]>(fn: ((...args: A) => unknown) | undefined, msg: string, fields?: Record<string, unknown>): (...args: A) => void {
  return (...args) => {
    try {
      fn?.(...args);
    } catch (error) {
      log.warn(msg, { ...fields, error });
    }
  };
}
