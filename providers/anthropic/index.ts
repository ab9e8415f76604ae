// The Anthropic Messages API (streaming) behind the neutral ModelClient interface.
import Anthropic from '@anthropic-ai/sdk';
import type { MessageCreateParamsStreaming, RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import type { ModelClient, ModelClientOptions } from '../../lib/model.ts';
import { createModelClient } from '../models/client.ts';
import { AnthropicAccumulator } from './accumulator.ts';
import { anthropicSupportsThinking } from './models.ts';
import { buildParams } from './request.ts';

export function createClient(opts: ModelClientOptions): ModelClient {
  return createModelClient<MessageCreateParamsStreaming, RawMessageStreamEvent>(opts, (sdk) => {
    const client = new Anthropic(sdk);
    return {
      errors: Anthropic,
      params: buildParams,
      send: (params, signal) => client.messages.create(params, { signal }),
      accumulator: () => new AnthropicAccumulator(),
      supportsThinking: anthropicSupportsThinking,
    };
  });
}
