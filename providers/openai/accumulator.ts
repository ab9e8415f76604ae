// Chat Completions stream chunks -> deltas and one turn. Pure: the SDK is only a source of types here.
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { TurnResult } from '../../lib/model.ts';
import { NO_DELTAS, UsageMeter, turnResult, type StreamAccumulator, type StreamDelta } from '../models/accumulator.ts';
import { IncompleteStreamError } from '../models/errors.ts';
import { ToolCallAssembler } from '../models/tool-calls.ts';

/** One tool call as sent back to the server: the standard fields plus whatever extra the server attached. */
export type WireToolCall = { id: string; type: 'function'; function: { name: string; arguments: string }; [extra: string]: unknown };

/** `message.native` of an assistant message produced here: the wire message to send back. */
export interface OpenAINative {
  openai: { role: 'assistant'; content: string | null; tool_calls?: WireToolCall[]; reasoning_details?: unknown[] };
}

/** Delta fields compatible servers use for reasoning (not in the SDK's types). */
type Delta = ChatCompletionChunk.Choice.Delta & {
  reasoning_content?: string | null;
  reasoning?: string | null;
  reasoning_details?: unknown;
};
type UsageExtra = { prompt_cache_hit_tokens?: number; prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null };

export class OpenAIAccumulator implements StreamAccumulator<ChatCompletionChunk> {
  #text = '';
  #finishReason: string | null = null;
  readonly #usage = new UsageMeter();
  readonly #reasoningDetails: unknown[] = [];
  readonly #tools = new ToolCallAssembler();

  push(chunk: ChatCompletionChunk): readonly StreamDelta[] {
    if (chunk.usage) {
      const u = chunk.usage as ChatCompletionChunk['usage'] & UsageExtra;
      this.#usage.report({
        input: u.prompt_tokens, // already includes the cached tokens
        output: u.completion_tokens,
        cacheRead: u.prompt_tokens_details?.cached_tokens ?? u.prompt_cache_hit_tokens,
        cacheWrite: u.prompt_tokens_details?.cache_write_tokens,
      });
    }
    const choice = chunk.choices?.[0];
    if (!choice) return NO_DELTAS;
    const delta = (choice.delta ?? {}) as Delta;
    const out: StreamDelta[] = [];
    const reasoning = delta.reasoning_content ?? delta.reasoning; // servers sending both mean the same text
    if (reasoning) out.push({ kind: 'thinking', text: reasoning });
    if (Array.isArray(delta.reasoning_details)) this.#reasoningDetails.push(...delta.reasoning_details);
    if (delta.content) {
      this.#text += delta.content;
      out.push({ kind: 'text', text: delta.content });
    }
    if (Array.isArray(delta.tool_calls)) for (const tc of delta.tool_calls) this.#toolFragment(tc);
    if (choice.finish_reason) this.#finishReason = choice.finish_reason;
    return out.length ? out : NO_DELTAS;
  }

  /** Fragments are keyed by `index`: the first carries id and name, later ones pieces of the JSON arguments. */
  #toolFragment(tc: ChatCompletionChunk.Choice.Delta.ToolCall): void {
    // A server that omits `index` sends each call whole: a new id starts a new call.
    const end = this.#tools.end;
    const index = Number.isSafeInteger(tc.index) ? tc.index : tc.id && !this.#tools.hasId(tc.id) ? end : Math.max(0, end - 1);
    const { index: _i, id: _id, type: _t, function: _f, ...extra } = tc as typeof tc & Record<string, unknown>;
    this.#tools.add(index, { id: tc.id, name: tc.function?.name, args: tc.function?.arguments, extra });
  }

  finish(): TurnResult {
    // Every compatible server ends with a finish_reason; a stream without one was cut off.
    if (!this.#finishReason) throw new IncompleteStreamError('the response stream ended without a finish_reason');
    const calls = this.#tools.finish();
    // The arguments go back exactly as received, even when they did not parse.
    const wireCalls = calls.map((c): WireToolCall => ({ ...c.extra, id: c.id, type: 'function', function: { name: c.name, arguments: c.args || '{}' } }));
    // content may only be null next to tool_calls.
    const native: OpenAINative = { openai: { role: 'assistant', content: this.#text || (wireCalls.length ? null : '') } };
    if (wireCalls.length) native.openai.tool_calls = wireCalls;
    if (this.#reasoningDetails.length) native.openai.reasoning_details = this.#reasoningDetails;
    return turnResult({
      text: this.#text,
      toolCalls: calls.map((c) => c.call),
      usage: this.#usage.usage(true),
      cutOff: this.#finishReason === 'length',
      native,
    });
  }
}
