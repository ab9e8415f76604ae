// Pieces shared by every part of the configuration (lib/config.ts and the provider tables): the error that
// names the bad field, environment readers that validate as they read, and strict JSON-object schemas.
import * as v from 'valibot';

export type Env = Record<string, string | undefined>;

/** A bad setting; the server refuses to start and prints `field: message`. */
export class ConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** A trimmed, non-empty variable, or undefined. */
export const envStr = (env: Env, name: string): string | undefined => (env[name] && env[name]!.trim() !== '' ? env[name]!.trim() : undefined);

/**
 * A whole number in [min, max], or undefined when unset; anything else is a ConfigError naming the variable.
 *
 * @example
 * envInt({ PORT: '8080' }, 'PORT', 0, 65535); // 8080
 */
export function envInt(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** One of `options`, or undefined when unset; anything else is a ConfigError naming the variable. */
export function envPick<T extends string>(env: Env, name: string, options: readonly T[]): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!options.includes(raw as T)) throw new ConfigError(name, `must be one of ${options.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

export const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
export const nonEmpty = v.pipe(v.string(), v.trim(), v.nonEmpty());
// valibot's strictObject accepts arrays (`[]` parses as `{}`); objects here must be plain JSON objects.
const plainObject = v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'must be an object');
export const strictObject = <E extends v.ObjectEntries>(entries: E) => v.pipe(plainObject, v.strictObject(entries));
