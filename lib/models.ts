// Model aliases: short names a request or sandcaster.json may use for a full model id.

export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  sonnet: 'claude-sonnet-4-6',
  opus: 'claude-opus-4-6',
  haiku: 'claude-haiku-4-5',
  gpt5: 'gpt-5.4',
  gpt5mini: 'gpt-5-mini',
  gemini: 'gemini-3.1-pro-preview',
};

export const resolveAlias = (model: string): string => MODEL_ALIASES[model] ?? model;
