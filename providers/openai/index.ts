// The OpenAI Chat Completions API (streaming) behind the neutral ModelClient interface. Serves OpenAI,
// Gemini's OpenAI-compatible endpoint, OpenRouter and any compatible server (Ollama, vLLM...).
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { ModelClient, ModelClientOptions } from '../../lib/model.ts';
import { createModelClient } from '../models/client.ts';
import { OpenAIAccumulator } from './accumulator.ts';
import { bareModel, dialectOf } from './dialect.ts';
import { buildParams } from './request.ts';

export function createClient(opts: ModelClientOptions): ModelClient {
  const dialect = dialectOf(opts.provider);
  return createModelClient<ChatCompletionCreateParamsStreaming, ChatCompletionChunk>(opts, (sdk) => {
    const client = new OpenAI({
      ...sdk,
      ...(dialect.openaiAccount ? {} : { organization: null, project: null }),
      ...(dialect.headers ? { defaultHeaders: dialect.headers } : {}),
    });
    return {
      errors: OpenAI,
      params: (req) => buildParams(req, dialect),
      send: (params, signal) => client.chat.completions.create(params, { signal }),
      accumulator: () => new OpenAIAccumulator(),
      supportsThinking: (model) => dialect.thinks(bareModel(model)),
    };
  });
}
