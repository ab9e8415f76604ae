// Anthropic Messages API (streaming) behind the neutral ModelClient interface.
//
// Decisions:
// - max_tokens = 16,384 for the answer plus the thinking budget when thinking is on (thinking tokens count
//   toward max_tokens, and the budget must stay below it), clamped to the model's output limit.
// - Thinking: SPEC budgets 2,048 / 8,192 / 24,576 (`type: enabled`). Models from Opus 4.6 on deprecate or
//   refuse manual budgets, so they get `type: adaptive` with `output_config.effort` of the same level.
// - Prompt caching: breakpoints on the last tool, the system prompt, and the last two user messages.
//   The latest one writes this turn's conversation prefix; the one before it hits exactly what the previous
//   turn wrote (the API only looks back ~20 blocks, which a turn with many parallel tool calls exceeds).
//   Within the API's limit of 4; a prefix below the model's minimum size is simply not cached.
// - The assistant content (thinking blocks with signatures, text, tool_use) is kept in `message.native`
//   and sent back verbatim: the API requires the thinking blocks of a tool-use turn to come back unchanged.

import Anthropic from '@anthropic-ai/sdk';
import type {
  ContentBlockParam,
  MessageCreateParamsStreaming,
  MessageParam,
  TextBlockParam,
  Tool,
  ToolResultBlockParam,
} from '@anthropic-ai/sdk/resources/messages';
import {
  emptyUsage,
  type Message,
  type ModelClient,
  type ModelClientOptions,
  type ToolCall,
  type TurnCallbacks,
  type TurnRequest,
  type TurnResult,
} from '../lib/model.ts';
import { IncompleteStreamError, THINKING_BUDGET, abortable, describeCause, parseToolInput, sdkLogger, toModelError, type ErrorInfo } from './model-common.ts';

const ANSWER_TOKENS = 16_384;
const EPHEMERAL = { type: 'ephemeral' } as const;

/** `message.native` of an assistant message produced here. */
interface AnthropicNative {
  anthropic: ContentBlockParam[];
}

/** Family and version of a Claude model id ("claude-sonnet-4-5-20250929" -> sonnet 4.5), or null. */
function claudeVersion(model: string): { family: string; version: number } | null {
  // New style: claude-<family>-<major>[-<minor>][-<date>]; a one-digit minor, never the date.
  let m = /claude-([a-z]+)-(\d+)(?:-(\d)(?!\d))?/.exec(model);
  if (m?.[1] && !/^\d/.test(m[1])) return { family: m[1], version: Number(m[2]) + Number(m[3] ?? 0) / 10 };
  // Old style: claude-<major>[-<minor>]-<family>.
  m = /claude-(\d)(?:-(\d))?-([a-z]+)/.exec(model);
  if (m?.[3]) return { family: m[3], version: Number(m[1]) + Number(m[2] ?? 0) / 10 };
  if (/claude-mythos/.test(model)) return { family: 'mythos', version: 5 };
  return null;
}

export function anthropicSupportsThinking(model: string): boolean {
  const v = claudeVersion(model);
  return v !== null && v.version >= 3.7; // extended thinking arrived with Claude 3.7 Sonnet
}

/** Models on which `thinking: {type: 'enabled', budget_tokens}` is deprecated (the SDK warns) or refused. */
function usesAdaptiveThinking(model: string): boolean {
  const v = claudeVersion(model);
  if (!v) return false;
  return v.version >= 4.7 || v.family === 'mythos' || (v.family === 'opus' && v.version >= 4.6);
}

/** Documented output limits; unknown ids get the common 64k. */
function outputLimit(model: string): number {
  const v = claudeVersion(model);
  if (!v) return 64_000;
  if (v.version < 3.5) return 4_096;
  if (v.version < 3.7) return 8_192;
  if (v.family === 'opus' && v.version < 4.5) return 32_000;
  return 64_000;
}

export function createAnthropicClient(opts: ModelClientOptions): ModelClient {
  const maxRetries = opts.maxRetries ?? 2;
  const client = new Anthropic({
    apiKey: opts.apiKey,
    baseURL: opts.baseURL ?? null, // null: the SDK default (or ANTHROPIC_BASE_URL)
    maxRetries,
    logger: sdkLogger('anthropic'),
  });

  async function turn(req: TurnRequest, cb: TurnCallbacks): Promise<TurnResult> {
    const params = buildParams(req);
    try {
      return await abortable(req.signal, async () => {
        const stream = await client.messages.create(params, { signal: req.signal });
        return await readStream(stream, req.signal, cb);
      });
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason;
      const ctx = { provider: opts.provider, apiKey: opts.apiKey, baseURL: client.baseURL, maxRetries, model: req.model };
      throw toModelError(classify(err), ctx, err);
    }
  }

  return { turn, supportsThinking: anthropicSupportsThinking };
}

function buildParams(req: TurnRequest): MessageCreateParamsStreaming {
  const thinking = req.thinkingLevel !== 'none' && anthropicSupportsThinking(req.model) ? req.thinkingLevel : null;
  const budget = thinking ? THINKING_BUDGET[thinking] : 0;
  const params: MessageCreateParamsStreaming = {
    model: req.model,
    max_tokens: Math.min(outputLimit(req.model), ANSWER_TOKENS + budget),
    messages: toWireMessages(req.messages),
    stream: true,
  };
  if (req.system) params.system = [{ type: 'text', text: req.system, cache_control: EPHEMERAL }];
  if (req.tools.length) {
    params.tools = req.tools.map(
      (t, i): Tool => ({
        name: t.name,
        description: t.description,
        input_schema: t.inputSchema as Tool.InputSchema,
        ...(i === req.tools.length - 1 ? { cache_control: EPHEMERAL } : {}),
      }),
    );
  }
  if (thinking && usesAdaptiveThinking(req.model)) {
    params.thinking = { type: 'adaptive' };
    params.output_config = { effort: thinking };
  } else if (thinking) {
    params.thinking = { type: 'enabled', budget_tokens: budget };
  }
  return params;
}

function toWireMessages(messages: Message[]): MessageParam[] {
  const out: MessageParam[] = [];
  for (const m of messages) {
    if (m.role === 'user') {
      out.push({ role: 'user', content: [{ type: 'text', text: m.content }] });
    } else if (m.role === 'tool') {
      const blocks = m.results.map(
        (r): ToolResultBlockParam => ({
          type: 'tool_result',
          tool_use_id: r.id,
          ...(r.content ? { content: r.content } : {}), // the API refuses empty text blocks
          ...(r.isError ? { is_error: true } : {}),
        }),
      );
      out.push({ role: 'user', content: blocks });
    } else {
      const content = isNative(m.native) ? m.native.anthropic : assistantBlocks(m.text, m.toolCalls);
      if (content.length) out.push({ role: 'assistant', content }); // an empty assistant message is refused
    }
  }
  // Cache breakpoints on the last block of the last two user messages (see the header comment).
  // The user-side blocks were created above, so setting cache_control mutates nothing shared.
  let marked = 0;
  for (let i = out.length - 1; i >= 0 && marked < 2; i--) {
    const msg = out[i]!;
    const content = msg.content;
    if (msg.role !== 'user' || typeof content === 'string' || !content.length) continue;
    (content[content.length - 1] as TextBlockParam | ToolResultBlockParam).cache_control = EPHEMERAL;
    marked++;
  }
  return out;
}

function isNative(native: unknown): native is AnthropicNative {
  return typeof native === 'object' && native !== null && Array.isArray((native as AnthropicNative).anthropic);
}

function assistantBlocks(text: string, toolCalls: ToolCall[]): ContentBlockParam[] {
  const blocks: ContentBlockParam[] = [];
  if (text) blocks.push({ type: 'text', text });
  for (const c of toolCalls) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: c.input });
  return blocks;
}

type StreamEvent = Anthropic.Messages.RawMessageStreamEvent;

/** Accumulates the streamed content blocks, forwarding text and thinking deltas as they arrive. */
async function readStream(stream: AsyncIterable<StreamEvent>, signal: AbortSignal, cb: TurnCallbacks): Promise<TurnResult> {
  const blocks: (ContentBlockParam | null)[] = []; // by stream index; null = a block type we do not keep
  const toolJson = new Map<number, string>();
  const toolCalls: ToolCall[] = [];
  const usage = emptyUsage();
  let stopReason: string | null = null;
  let finished = false;
  // Usage arrives in message_start and again, cumulatively, in message_delta: later non-null values replace
  // earlier ones (never add them up).
  let raw = { input: 0, cacheWrite: 0, cacheRead: 0, output: 0 };
  const takeUsage = (u: { input_tokens?: number | null; output_tokens?: number | null; cache_creation_input_tokens?: number | null; cache_read_input_tokens?: number | null }) => {
    raw = {
      input: u.input_tokens ?? raw.input,
      cacheWrite: u.cache_creation_input_tokens ?? raw.cacheWrite,
      cacheRead: u.cache_read_input_tokens ?? raw.cacheRead,
      output: u.output_tokens ?? raw.output,
    };
  };

  for await (const ev of stream) {
    if (signal.aborted) break;
    switch (ev.type) {
      case 'message_start':
        takeUsage(ev.message.usage);
        break;
      case 'content_block_start': {
        const b = ev.content_block;
        if (b.type === 'text') blocks[ev.index] = { type: 'text', text: b.text };
        else if (b.type === 'thinking') blocks[ev.index] = { type: 'thinking', thinking: b.thinking, signature: b.signature };
        else if (b.type === 'redacted_thinking') blocks[ev.index] = { type: 'redacted_thinking', data: b.data };
        else if (b.type === 'tool_use') {
          blocks[ev.index] = { type: 'tool_use', id: b.id, name: b.name, input: {} };
          toolJson.set(ev.index, '');
        } else blocks[ev.index] = null;
        break;
      }
      case 'content_block_delta': {
        const b = blocks[ev.index];
        const d = ev.delta;
        if (d.type === 'text_delta' && b?.type === 'text') {
          b.text += d.text;
          cb.onText(d.text);
        } else if (d.type === 'thinking_delta' && b?.type === 'thinking') {
          b.thinking += d.thinking;
          cb.onThinking(d.thinking);
        } else if (d.type === 'signature_delta' && b?.type === 'thinking') {
          b.signature += d.signature;
        } else if (d.type === 'input_json_delta' && toolJson.has(ev.index)) {
          toolJson.set(ev.index, toolJson.get(ev.index) + d.partial_json);
        }
        break;
      }
      case 'content_block_stop':
        finishToolBlock(ev.index);
        break;
      case 'message_delta':
        stopReason = ev.delta.stop_reason ?? stopReason;
        takeUsage(ev.usage);
        break;
      case 'message_stop':
        finished = true;
        break;
    }
  }
  if (signal.aborted) throw signal.reason;
  if (!finished) throw new IncompleteStreamError('the response stream ended before message_stop');

  function finishToolBlock(index: number): void {
    const b = blocks[index];
    const json = toolJson.get(index);
    if (b?.type !== 'tool_use' || json === undefined) return;
    toolJson.delete(index);
    const { input, inputError } = parseToolInput(json);
    b.input = input;
    toolCalls.push({ id: b.id, name: b.name, input, ...(inputError ? { inputError } : {}) });
  }
  // A response cut off by max_tokens can end inside a tool_use block without its stop event.
  for (const index of [...toolJson.keys()]) finishToolBlock(index);

  usage.inputTokens = raw.input + raw.cacheWrite + raw.cacheRead; // SPEC section 4
  usage.outputTokens = raw.output;
  usage.cacheReadTokens = raw.cacheRead;
  usage.cacheWriteTokens = raw.cacheWrite;

  // Empty text blocks are refused when sent back, so they are not kept.
  const content = blocks.filter((b): b is ContentBlockParam => b !== null && b !== undefined && !(b.type === 'text' && !b.text));
  const text = content.map((b) => (b.type === 'text' ? b.text : '')).join('');
  const native: AnthropicNative = { anthropic: content };
  return {
    text,
    toolCalls,
    usage,
    stopReason:
      stopReason === 'max_tokens' || stopReason === 'model_context_window_exceeded' ? 'max_tokens' : toolCalls.length ? 'tool_use' : 'end',
    message: { role: 'assistant', text, toolCalls, native },
  };
}

function classify(err: unknown): ErrorInfo {
  if (err instanceof Anthropic.APIConnectionTimeoutError) return { kind: 'timeout' };
  if (err instanceof Anthropic.APIConnectionError) return { kind: 'connection', message: describeCause(err.cause ?? err) };
  if (err instanceof Anthropic.APIError) {
    if (typeof err.status === 'number') return { kind: 'status', status: err.status, message: err.apiMessage ?? err.message };
    return { kind: 'stream', message: [err.type, err.apiMessage ?? err.message].filter(Boolean).join(': ') };
  }
  if (err instanceof IncompleteStreamError) return { kind: 'dropped', message: err.message };
  // The SDKs wrap failures before the response as APIConnectionError; undici reports a body cut off
  // mid-stream as a TypeError ("terminated").
  if (err instanceof TypeError) return { kind: 'dropped', message: describeCause(err) };
  return { kind: 'other', message: describeCause(err) };
}
