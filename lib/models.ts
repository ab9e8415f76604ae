// Model aliases and provider auto-detection (SPEC section 3).
import type { ModelProviderName } from './model.ts';

export const MODEL_ALIASES: Record<string, string> = {
  sonnet: 'claude-sonnet-4-6',
  opus: 'claude-opus-4-6',
  haiku: 'claude-haiku-4-5',
  gpt5: 'gpt-5.4',
  gpt5mini: 'gpt-5-mini',
  gemini: 'gemini-3.1-pro-preview',
};

/** Used when neither the request nor the config names a model. */
export const DEFAULT_MODELS: Record<ModelProviderName, string> = {
  anthropic: 'claude-sonnet-4-6',
  openai: 'gpt-5.4',
  google: 'gemini-3.1-pro-preview',
  openrouter: 'anthropic/claude-sonnet-4.6',
};

export const KEY_ENV: Record<ModelProviderName, string> = {
  anthropic: 'ANTHROPIC_API_KEY',
  openai: 'OPENAI_API_KEY',
  google: 'GOOGLE_API_KEY',
  openrouter: 'OPENROUTER_API_KEY',
};

export const resolveAlias = (model: string): string => MODEL_ALIASES[model] ?? model;

export function providerForModel(model: string): ModelProviderName | undefined {
  if (model.startsWith('claude-')) return 'anthropic';
  if (/^(gpt-|o1|o3|o4|chatgpt-)/.test(model)) return 'openai';
  if (model.startsWith('gemini-')) return 'google';
  if (/^[^/\s]+\/[^/\s]+/.test(model)) return 'openrouter';
  return undefined;
}
