// How the servers behind the OpenAI Chat Completions API differ. Keyed by provider name; a provider
// without an entry (any other compatible server: Ollama, vLLM...) gets the generic dialect.

export interface Dialect {
  /** Whether a model (id without vendor prefix, lower case) takes a reasoning level. */
  thinks(bareModel: string): boolean;
  /** `reasoning_effort: level` (OpenAI, Gemini, gpt-oss servers) or `reasoning: {effort: level}` (OpenRouter). */
  reasoningParam: 'reasoning_effort' | 'reasoning';
  /** Models given `max_completion_tokens`: OpenAI's own reasoning models, whose output limits are known to be large. */
  limitedModels?: RegExp;
  /** Whether OPENAI_ORG_ID / OPENAI_PROJECT_ID (read by the SDK) may be sent; they belong to OpenAI only. */
  openaiAccount: boolean;
  headers?: Record<string, string>;
  /** Whether `reasoning_details` goes back to the server (OpenRouter needs it; others may refuse the field). */
  keepsReasoningDetails: boolean;
}

const OPENAI_REASONING = /^(o\d|gpt-5|gpt-oss)/;
const GEMINI_THINKING = /^gemini-(2\.5|[3-9])/;

const GENERIC: Dialect = {
  thinks: (m) => OPENAI_REASONING.test(m),
  reasoningParam: 'reasoning_effort',
  openaiAccount: false,
  keepsReasoningDetails: false,
};

const DIALECTS: Readonly<Record<string, Dialect>> = {
  openai: { ...GENERIC, limitedModels: /^(o\d|gpt-5)/, openaiAccount: true },
  google: { ...GENERIC, thinks: (m) => GEMINI_THINKING.test(m) },
  openrouter: {
    ...GENERIC,
    // OpenRouter normalises `reasoning` across vendors; these families accept it.
    thinks: (m) =>
      OPENAI_REASONING.test(m) ||
      GEMINI_THINKING.test(m) ||
      /^claude-(3[.-]7|(opus|sonnet|haiku)-([4-9]|\d\d))/.test(m) ||
      /deepseek-(r1|v3\.[1-9])|grok-(3-mini|[4-9])|qwen3|thinking|reason/.test(m),
    reasoningParam: 'reasoning',
    headers: { 'X-Title': 'Sandcaster' },
    keepsReasoningDetails: true,
  },
};

export const dialectOf = (provider: string): Dialect => (Object.hasOwn(DIALECTS, provider) ? DIALECTS[provider] : undefined) ?? GENERIC;

/** Strips a vendor prefix ("openai/gpt-5" -> "gpt-5") and Gemini's "models/". */
export const bareModel = (model: string) => model.slice(model.lastIndexOf('/') + 1).toLowerCase();
