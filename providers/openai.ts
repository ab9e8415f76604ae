// OpenAI Chat Completions API (streaming) behind the neutral ModelClient interface. Serves OpenAI, Gemini's
// OpenAI-compatible endpoint, OpenRouter and any compatible server (Ollama, vLLM...) through baseURL.
//
// Decisions:
// - No output limit is sent, except `max_completion_tokens` (16,384 + the thinking budget of the level, the
//   medium one when the level is `none` since these models reason by default) for OpenAI reasoning models: limits differ per model and a value too large is a 400 on some servers (vLLM
//   refuses prompt + max_tokens > context), while the server default is the model's own maximum.
// - thinkingLevel -> `reasoning_effort` (OpenAI reasoning models, gpt-oss, Gemini 2.5+) or
//   `reasoning: {effort}` (OpenRouter). `none` sends nothing, leaving the model's default.
// - Reasoning text arrives, when a server exposes it, as `delta.reasoning_content` (DeepSeek, vLLM, Qwen) or
//   `delta.reasoning` (OpenRouter, Ollama, newer vLLM) and goes to onThinking. It is not sent back (DeepSeek
//   refuses it), but OpenRouter's `reasoning_details` and any extra fields on tool calls (Gemini's thought
//   signatures in `extra_content`) are, since those servers need them to continue a tool-use turn.
// - The Chat Completions wire has no error flag for tool results, so a failed tool's content is prefixed
//   with "Error: ".

import OpenAI from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import {
  emptyUsage,
  type Message,
  type ModelClient,
  type ModelClientOptions,
  type ModelProviderName,
  type ThinkingLevel,
  type ToolCall,
  type TurnCallbacks,
  type TurnRequest,
  type TurnResult,
} from '../lib/model.ts';
import { IncompleteStreamError, THINKING_BUDGET, abortable, describeCause, parseToolInput, sdkLogger, toModelError, type ErrorInfo } from './model-common.ts';

export const DEFAULT_OPENAI_COMPAT_URLS: Partial<Record<ModelProviderName, string>> = {
  google: 'https://generativelanguage.googleapis.com/v1beta/openai/',
  openrouter: 'https://openrouter.ai/api/v1',
};

const ANSWER_TOKENS = 16_384;

/** One tool call as sent back to the server: the standard fields plus whatever extra the server attached. */
type WireToolCall = { id: string; type: 'function'; function: { name: string; arguments: string }; [extra: string]: unknown };

/** `message.native` of an assistant message produced here: the wire message to send back. */
interface OpenAINative {
  openai: { role: 'assistant'; content: string | null; tool_calls?: WireToolCall[]; reasoning_details?: unknown[] };
}

const OPENAI_REASONING = /^(o\d|gpt-5|gpt-oss)/;
/** OpenAI's own reasoning models, whose output limits are known to be large. */
const OPENAI_HOSTED_REASONING = /^(o\d|gpt-5)/;
const GEMINI_THINKING = /^gemini-(2\.5|[3-9])/;

/** Strips a vendor prefix ("openai/gpt-5" -> "gpt-5") and Gemini's "models/". */
const bareModel = (model: string) => model.slice(model.lastIndexOf('/') + 1).toLowerCase();

export function openAISupportsThinking(provider: ModelProviderName, model: string): boolean {
  const m = bareModel(model);
  if (provider === 'google') return GEMINI_THINKING.test(m);
  if (provider === 'openrouter') {
    // OpenRouter normalises `reasoning` across vendors; these families accept it.
    return (
      OPENAI_REASONING.test(m) ||
      GEMINI_THINKING.test(m) ||
      /^claude-(3[.-]7|(opus|sonnet|haiku)-([4-9]|\d\d))/.test(m) ||
      /deepseek-(r1|v3\.[1-9])|grok-(3-mini|[4-9])|qwen3|thinking|reason/.test(m)
    );
  }
  return OPENAI_REASONING.test(m);
}

export function createOpenAIClient(opts: ModelClientOptions): ModelClient {
  const maxRetries = opts.maxRetries ?? 2;
  const isOpenAI = opts.provider === 'openai';
  const client = new OpenAI({
    apiKey: opts.apiKey,
    baseURL: opts.baseURL ?? DEFAULT_OPENAI_COMPAT_URLS[opts.provider], // undefined: SDK default / OPENAI_BASE_URL
    maxRetries,
    logger: sdkLogger('openai'),
    // OPENAI_ORG_ID / OPENAI_PROJECT_ID belong to OpenAI only; do not send them to other servers.
    ...(isOpenAI ? {} : { organization: null, project: null }),
    ...(opts.provider === 'openrouter' ? { defaultHeaders: { 'X-Title': 'Sandcaster' } } : {}),
  });
  const supportsThinking = (model: string) => openAISupportsThinking(opts.provider, model);

  function buildParams(req: TurnRequest): ChatCompletionCreateParamsStreaming {
    const params: ChatCompletionCreateParamsStreaming & Record<string, unknown> = {
      model: req.model,
      messages: toWireMessages(req.system, req.messages),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (req.tools.length) {
      params.tools = req.tools.map(
        (t): ChatCompletionTool => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.inputSchema } }),
      );
    }
    const level: Exclude<ThinkingLevel, 'none'> | null = req.thinkingLevel !== 'none' && supportsThinking(req.model) ? req.thinkingLevel : null;
    if (level && opts.provider === 'openrouter') params.reasoning = { effort: level };
    else if (level) params.reasoning_effort = level;
    if (isOpenAI && OPENAI_HOSTED_REASONING.test(bareModel(req.model))) {
      params.max_completion_tokens = ANSWER_TOKENS + (level ? THINKING_BUDGET[level] : THINKING_BUDGET.medium);
    }
    return params;
  }

  async function turn(req: TurnRequest, cb: TurnCallbacks): Promise<TurnResult> {
    const params = buildParams(req);
    try {
      return await abortable(req.signal, async () => {
        const stream = await client.chat.completions.create(params, { signal: req.signal });
        return await readStream(stream, req.signal, cb);
      });
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason;
      const ctx = { provider: opts.provider, apiKey: opts.apiKey, baseURL: client.baseURL, maxRetries, model: req.model };
      throw toModelError(classify(err), ctx, err);
    }
  }

  function toWireMessages(system: string, messages: Message[]): ChatCompletionMessageParam[] {
    const out: ChatCompletionMessageParam[] = [];
    if (system) out.push({ role: 'system', content: system });
    for (const m of messages) {
      if (m.role === 'user') out.push({ role: 'user', content: m.content });
      else if (m.role === 'tool') {
        for (const r of m.results) {
          out.push({ role: 'tool', tool_call_id: r.id, content: r.isError ? `Error: ${r.content}` : r.content });
        }
      } else {
        let msg: OpenAINative['openai'];
        if (isNative(m.native)) {
          msg = m.native.openai;
          // reasoning_details is OpenRouter's; other servers may refuse an unknown field.
          if (opts.provider !== 'openrouter' && msg.reasoning_details) {
            const { reasoning_details: _dropped, ...rest } = msg;
            msg = rest;
          }
        } else {
          msg = { role: 'assistant', content: m.text || (m.toolCalls.length ? null : '') };
          if (m.toolCalls.length) {
            msg.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.input) } }));
          }
        }
        out.push(msg as ChatCompletionMessageParam);
      }
    }
    return out;
  }

  return { turn, supportsThinking };
}

function isNative(native: unknown): native is OpenAINative {
  return typeof native === 'object' && native !== null && typeof (native as OpenAINative).openai === 'object';
}

/** Extra delta fields that compatible servers use for reasoning (not in the SDK's types). */
type Delta = ChatCompletionChunk.Choice.Delta & {
  reasoning_content?: string | null;
  reasoning?: string | null;
  reasoning_details?: unknown[];
};
type UsageExtra = { prompt_cache_hit_tokens?: number; prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null };

async function readStream(stream: AsyncIterable<ChatCompletionChunk>, signal: AbortSignal, cb: TurnCallbacks): Promise<TurnResult> {
  let text = '';
  let finishReason: string | null = null;
  const usage = emptyUsage();
  const reasoningDetails: unknown[] = [];
  // Tool calls arrive as fragments keyed by `index`: the first carries id and name, later ones pieces of
  // the JSON arguments.
  const calls: { id: string; name: string; args: string; extra: Record<string, unknown> }[] = [];

  for await (const chunk of stream) {
    if (signal.aborted) break;
    if (chunk.usage) {
      // Some servers repeat usage on every chunk; the last one is the total.
      const u = chunk.usage as ChatCompletionChunk['usage'] & UsageExtra;
      const cached = u.prompt_tokens_details?.cached_tokens ?? u.prompt_cache_hit_tokens ?? 0;
      usage.inputTokens = u.prompt_tokens ?? 0; // already includes cached tokens (SPEC section 4)
      usage.outputTokens = u.completion_tokens ?? 0;
      usage.cacheReadTokens = cached;
      usage.cacheWriteTokens = u.prompt_tokens_details?.cache_write_tokens ?? 0;
    }
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const delta = (choice.delta ?? {}) as Delta;
    const reasoning = delta.reasoning_content ?? delta.reasoning; // servers sending both mean the same text
    if (reasoning) cb.onThinking(reasoning);
    if (delta.reasoning_details) reasoningDetails.push(...delta.reasoning_details);
    if (delta.content) {
      text += delta.content;
      cb.onText(delta.content);
    }
    for (const tc of delta.tool_calls ?? []) {
      // A server that omits `index` sends each call whole: a new id starts a new call.
      const idx = tc.index ?? (tc.id && !calls.some((c) => c.id === tc.id) ? calls.length : calls.length - 1);
      const call = (calls[idx] ??= { id: '', name: '', args: '', extra: {} });
      if (tc.id && !call.id) call.id = tc.id;
      if (tc.function?.name && !call.name) call.name = tc.function.name;
      if (tc.function?.arguments) call.args += tc.function.arguments;
      const { index: _i, id: _id, type: _t, function: _f, ...extra } = tc as typeof tc & Record<string, unknown>;
      Object.assign(call.extra, extra);
    }
    if (choice.finish_reason) finishReason = choice.finish_reason;
  }
  if (signal.aborted) throw signal.reason;
  // Every compatible server ends with a finish_reason; a stream without one was cut off.
  if (!finishReason) throw new IncompleteStreamError('the response stream ended without a finish_reason');

  const toolCalls: ToolCall[] = [];
  const wireCalls: WireToolCall[] = [];
  calls.forEach((c, i) => {
    if (!c) return; // a gap in the indexes
    const id = c.id || `call_${i}`; // some local servers send no id
    const { input, inputError } = parseToolInput(c.args);
    toolCalls.push({ id, name: c.name, input, ...(inputError ? { inputError } : {}) });
    // The arguments go back exactly as received, even when they did not parse.
    wireCalls.push({ ...c.extra, id, type: 'function', function: { name: c.name, arguments: c.args || '{}' } });
  });
  // content may only be null next to tool_calls.
  const native: OpenAINative = { openai: { role: 'assistant', content: text || (wireCalls.length ? null : '') } };
  if (wireCalls.length) native.openai.tool_calls = wireCalls;
  if (reasoningDetails.length) native.openai.reasoning_details = reasoningDetails;
  return {
    text,
    toolCalls,
    usage,
    stopReason: finishReason === 'length' ? 'max_tokens' : toolCalls.length ? 'tool_use' : 'end',
    message: { role: 'assistant', text, toolCalls, native },
  };
}

function classify(err: unknown): ErrorInfo {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return { kind: 'timeout' };
  if (err instanceof OpenAI.APIConnectionError) return { kind: 'connection', message: describeCause(err.cause ?? err) };
  if (err instanceof OpenAI.APIError) {
    if (typeof err.status === 'number') return { kind: 'status', status: err.status, message: err.message };
    return { kind: 'stream', message: err.message };
  }
  if (err instanceof IncompleteStreamError) return { kind: 'dropped', message: err.message };
  // The SDKs wrap failures before the response as APIConnectionError; undici reports a body cut off
  // mid-stream as a TypeError ("terminated").
  if (err instanceof TypeError) return { kind: 'dropped', message: describeCause(err) };
  return { kind: 'other', message: describeCause(err) };
}
