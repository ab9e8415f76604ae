// Anthropic Messages stream events -> deltas and one turn. Pure: the SDK is only a source of types here.
import type { ContentBlockParam, MessageDeltaUsage, RawContentBlockDelta, RawContentBlockStartEvent, RawMessageStreamEvent, Usage as WireUsage } from '@anthropic-ai/sdk/resources/messages';
import type { TurnResult } from '../../lib/model.ts';
import { NO_DELTAS, UsageMeter, turnResult, type StreamAccumulator, type StreamDelta, type UsageReport } from '../models/accumulator.ts';
import { IncompleteStreamError } from '../models/errors.ts';
import { ToolCallAssembler } from '../models/tool-calls.ts';

/**
 * `message.native` of an assistant message produced here: its content blocks (thinking blocks with their
 * signatures included), sent back verbatim as the API requires for a tool-use turn.
 */
export interface AnthropicNative {
  anthropic: ContentBlockParam[];
}

const reportOf = (u: WireUsage | MessageDeltaUsage): UsageReport => ({
  input: u.input_tokens,
  output: u.output_tokens,
  cacheRead: u.cache_read_input_tokens,
  cacheWrite: u.cache_creation_input_tokens,
});

export class AnthropicAccumulator implements StreamAccumulator<RawMessageStreamEvent> {
  /** Content blocks by stream index; null = a block type we do not keep. A Map: indexes come from the wire. */
  readonly #blocks = new Map<number, ContentBlockParam | null>();
  readonly #tools = new ToolCallAssembler();
  readonly #usage = new UsageMeter();
  #stopReason: string | null = null;
  #finished = false;

  push(ev: RawMessageStreamEvent): readonly StreamDelta[] {
    switch (ev.type) {
      case 'message_start':
        this.#usage.report(reportOf(ev.message.usage));
        break;
      case 'content_block_start':
        this.#start(ev.index, ev.content_block);
        break;
      case 'content_block_delta':
        return this.#delta(ev.index, ev.delta);
      case 'message_delta':
        this.#stopReason = ev.delta.stop_reason ?? this.#stopReason;
        this.#usage.report(reportOf(ev.usage));
        break;
      case 'message_stop':
        this.#finished = true;
        break;
    }
    return NO_DELTAS;
  }

  #start(index: number, b: RawContentBlockStartEvent['content_block']): void {
    let kept: ContentBlockParam | null = null;
    if (b.type === 'text') kept = { type: 'text', text: b.text };
    else if (b.type === 'thinking') kept = { type: 'thinking', thinking: b.thinking, signature: b.signature };
    else if (b.type === 'redacted_thinking') kept = { type: 'redacted_thinking', data: b.data };
    else if (b.type === 'tool_use') {
      kept = { type: 'tool_use', id: b.id, name: b.name, input: {} };
      this.#tools.add(index, { id: b.id, name: b.name });
    }
    this.#blocks.set(index, kept);
  }

  #delta(index: number, d: RawContentBlockDelta): readonly StreamDelta[] {
    const b = this.#blocks.get(index);
    if (d.type === 'text_delta' && b?.type === 'text') {
      b.text += d.text;
      return [{ kind: 'text', text: d.text }];
    }
    if (d.type === 'thinking_delta' && b?.type === 'thinking') {
      b.thinking += d.thinking;
      return [{ kind: 'thinking', text: d.thinking }];
    }
    if (d.type === 'signature_delta' && b?.type === 'thinking') b.signature += d.signature;
    else if (d.type === 'input_json_delta' && b?.type === 'tool_use') this.#tools.add(index, { args: d.partial_json });
    return NO_DELTAS;
  }

  finish(): TurnResult {
    if (!this.#finished) throw new IncompleteStreamError('the response stream ended before message_stop');
    // A response cut off by max_tokens may end inside a tool_use block: its arguments then fail to parse.
    const calls = this.#tools.finish();
    for (const c of calls) {
      const b = this.#blocks.get(c.index);
      if (b?.type === 'tool_use') Object.assign(b, { id: c.id, input: c.call.input });
    }
    // Empty text blocks are refused when sent back, so they are not kept.
    const content = [...this.#blocks.entries()]
      .sort(([a], [b]) => a - b)
      .flatMap(([, b]) => (b === null || (b.type === 'text' && !b.text) ? [] : [b]));
    const native: AnthropicNative = { anthropic: content };
    return turnResult({
      text: content.map((b) => (b.type === 'text' ? b.text : '')).join(''),
      toolCalls: calls.map((c) => c.call),
      usage: this.#usage.usage(false),
      cutOff: this.#stopReason === 'max_tokens' || this.#stopReason === 'model_context_window_exceeded',
      native,
    });
  }
}
