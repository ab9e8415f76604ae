// The model providers this server knows: one row each, holding everything the rest of the code needs
// (configuration, choosing a provider, hints). Names come from the rows. A provider that speaks a wire API
// we already have (any OpenAI-compatible server) is one more row; a new wire API is one folder under
// providers/ plus its line in app.ts, which the compiler asks for.

/** One model provider. */
export interface ModelProviderDescriptor {
  /** The wire API it speaks; app.ts maps each API to the module that creates its clients. */
  readonly api: string;
  /** Environment variable holding its API key; without a key the provider is not usable. */
  readonly keyEnv: string;
  /** Environment variable that overrides its endpoint (gateways, proxies, local servers). */
  readonly baseUrlEnv: string;
  /** Endpoint used when `baseUrlEnv` is unset. */
  readonly endpoint: string;
  /** Model used when neither the request nor the configuration names one. */
  readonly defaultModel: string;
  /** Model ids it is chosen for when no provider is named (rows are tried in table order). */
  readonly modelIds?: RegExp;
  /** Chosen, in table order, when nothing names a provider or a model of a known family and its key is set. */
  readonly auto: boolean;
  /** Where an operator gets a key; shown in NOT_CONFIGURED and authentication hints. */
  readonly keyHint: string;
}

/** Providers by name; a configuration may add rows of its own (see `loadConfig`). */
export type ModelProviderTable = Readonly<Record<string, ModelProviderDescriptor>>;

/**
 * The built-in providers, in the order used to pick one by key.
 *
 * @example Usage
 * ```ts
 * import { MODEL_PROVIDERS } from './model-providers.ts';
 * const row = MODEL_PROVIDERS.openai;
 * console.log(row.keyEnv, row.endpoint); // OPENAI_API_KEY https://api.openai.com/v1
 * ```
 */
export const MODEL_PROVIDERS = {
  anthropic: {
    api: 'anthropic-messages',
    keyEnv: 'ANTHROPIC_API_KEY',
    baseUrlEnv: 'ANTHROPIC_BASE_URL',
    endpoint: 'https://api.anthropic.com',
    defaultModel: 'claude-sonnet-4-6',
    modelIds: /^claude-/,
    auto: true,
    keyHint: 'keys are at https://console.anthropic.com/settings/keys',
  },
  openai: {
    api: 'openai-chat',
    keyEnv: 'OPENAI_API_KEY',
    baseUrlEnv: 'OPENAI_BASE_URL',
    endpoint: 'https://api.openai.com/v1',
    defaultModel: 'gpt-5.4',
    modelIds: /^(gpt-|o1|o3|o4|chatgpt-)/,
    auto: true,
    keyHint: 'keys are at https://platform.openai.com/api-keys',
  },
  google: {
    api: 'openai-chat', // Gemini's OpenAI-compatible endpoint
    keyEnv: 'GOOGLE_API_KEY',
    baseUrlEnv: 'GOOGLE_BASE_URL',
    endpoint: 'https://generativelanguage.googleapis.com/v1beta/openai/',
    defaultModel: 'gemini-3.1-pro-preview',
    modelIds: /^gemini-/,
    auto: true,
    keyHint: 'keys are at https://aistudio.google.com/apikey',
  },
  openrouter: {
    api: 'openai-chat',
    keyEnv: 'OPENROUTER_API_KEY',
    baseUrlEnv: 'OPENROUTER_BASE_URL',
    endpoint: 'https://openrouter.ai/api/v1',
    defaultModel: 'anthropic/claude-sonnet-4.6',
    modelIds: /^[^/\s]+\/[^/\s]+/, // vendor/model
    auto: true,
    keyHint: 'keys are at https://openrouter.ai/settings/keys',
  },
} as const satisfies ModelProviderTable;

export type ModelProviderName = keyof typeof MODEL_PROVIDERS;
/** The wire APIs the built-in rows speak; app.ts must load every one of them. */
export type ModelApiName = (typeof MODEL_PROVIDERS)[ModelProviderName]['api'];

export const MODEL_PROVIDER_NAMES = Object.keys(MODEL_PROVIDERS) as ModelProviderName[];

/** The first provider (in table order) whose `modelIds` match the id, or undefined. */
export function providerForModel(model: string, table: ModelProviderTable = MODEL_PROVIDERS): string | undefined {
  return Object.keys(table).find((name) => table[name]?.modelIds?.test(model));
}
