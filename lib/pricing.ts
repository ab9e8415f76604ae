// Cost accounting (docs/configuration.md#pricing): USD per million tokens, per model id.
// Built-in figures are the providers' published list prices when this table was written (standard tier,
// short-context rates); operators override or extend them with `pricing` in sandcaster.json.
import * as v from 'valibot';
import type { Usage } from './model.ts';

export interface Price {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
}

const usd = v.pipe(v.number(), v.minValue(0));
export const priceSchema = v.strictObject({ input: usd, output: usd, cacheRead: v.optional(usd), cacheWrite: v.optional(usd) });

// Anthropic: cache reads 0.1x input, 5-minute cache writes 1.25x input. OpenAI/Gemini: cached input as listed, no write charge.
const anthropic = (input: number, output: number): Price => ({ input, output, cacheRead: input / 10, cacheWrite: input * 1.25 });

export const BUILTIN_PRICES: Record<string, Price> = {
  'claude-opus-4-6': anthropic(5, 25),
  'claude-opus-4-5': anthropic(5, 25),
  'claude-opus-4-1': anthropic(15, 75),
  'claude-opus-4-0': anthropic(15, 75),
  'claude-sonnet-4-6': anthropic(3, 15),
  'claude-sonnet-4-5': anthropic(3, 15),
  'claude-sonnet-4-0': anthropic(3, 15),
  'claude-3-7-sonnet': anthropic(3, 15),
  'claude-haiku-4-5': anthropic(1, 5),
  'claude-3-5-haiku': anthropic(0.8, 4),
  'gpt-5.4': { input: 2.5, output: 15, cacheRead: 0.25 },
  'gpt-5.2': { input: 1.75, output: 14, cacheRead: 0.175 },
  'gpt-5.1': { input: 1.25, output: 10, cacheRead: 0.125 },
  'gpt-5': { input: 1.25, output: 10, cacheRead: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cacheRead: 0.025 },
  'gpt-5-nano': { input: 0.05, output: 0.4, cacheRead: 0.005 },
  'gpt-4.1': { input: 2, output: 8, cacheRead: 0.5 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6, cacheRead: 0.1 },
  'gpt-4o': { input: 2.5, output: 10, cacheRead: 1.25 },
  'gpt-4o-mini': { input: 0.15, output: 0.6, cacheRead: 0.075 },
  o3: { input: 2, output: 8, cacheRead: 0.5 },
  'o4-mini': { input: 1.1, output: 4.4, cacheRead: 0.275 },
  'gemini-3.1-pro-preview': { input: 2, output: 12, cacheRead: 0.2 },
  'gemini-2.5-pro': { input: 1.25, output: 10, cacheRead: 0.125 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cacheRead: 0.03 },
};

/** The price of an exact id or of a dated variant of it (`<id>-YYYYMMDD`); overrides win. */
export function findPrice(model: string, overrides: Record<string, Price> = {}): Price | undefined {
  const base = model.replace(/-\d{8}$/, '');
  return overrides[model] ?? overrides[base] ?? BUILTIN_PRICES[model] ?? BUILTIN_PRICES[base];
}

/** USD for the usage; inputTokens includes the cache parts, which are billed at their own rates. */
export function costOf(usage: Usage, price: Price): number {
  const plainInput = Math.max(0, usage.inputTokens - usage.cacheReadTokens - usage.cacheWriteTokens);
  const micro =
    plainInput * price.input +
    usage.outputTokens * price.output +
    usage.cacheReadTokens * (price.cacheRead ?? price.input) +
    usage.cacheWriteTokens * (price.cacheWrite ?? price.input);
  return Number((micro / 1e6).toFixed(8)); // rounded to avoid float noise like 0.30000000000000004
}
