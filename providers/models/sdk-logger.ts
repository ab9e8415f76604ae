// SDK log lines go through our JSON logger (stdout carries JSON lines only; registered secrets are redacted).
import { log } from '../../lib/log.ts';

export type SdkLogger = ReturnType<typeof sdkLogger>;

/** A logger in the shape both model SDKs accept; `provider` tags every line. */
export function sdkLogger(provider: string) {
  const fields = (rest: unknown[]) => (rest.length ? { provider, details: rest.map((r) => (r instanceof Error ? r.message : r)) } : { provider });
  return {
    error: (msg: string, ...rest: unknown[]) => log.error(msg, fields(rest)),
    warn: (msg: string, ...rest: unknown[]) => log.warn(msg, fields(rest)),
    info: (msg: string, ...rest: unknown[]) => log.info(msg, fields(rest)),
    debug: (msg: string, ...rest: unknown[]) => log.debug(msg, fields(rest)),
  };
}
