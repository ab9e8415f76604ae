// Neutral turn request -> Chat Completions parameters.
//
// - No output limit is sent, except `max_completion_tokens` (the answer's room + the thinking budget of the
//   level, the medium one when the level is `none` since these models reason by default) for OpenAI's own
//   reasoning models: limits differ per model and a value too large is a 400 on some servers (vLLM refuses
//   prompt + max_tokens > context), while the server default is the model's own maximum.
// - thinkingLevel -> `reasoning_effort` or `reasoning: {effort}` (see dialect.ts); `none` sends nothing,
//   leaving the model's default.
// - Reasoning text is not sent back (DeepSeek refuses it), but OpenRouter's `reasoning_details` and any
//   extra fields on tool calls (Gemini's thought signatures in `extra_content`) are, since those servers
//   need them to continue a tool-use turn.
// - The wire has no error flag for tool results, so a failed tool's content is prefixed with "Error: ".
import type { ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { Message, TurnRequest } from '../../lib/model.ts';
import { ANSWER_TOKENS, THINKING_BUDGET } from '../models/client.ts';
import type { OpenAINative } from './accumulator.ts';
import { bareModel, type Dialect } from './dialect.ts';

export function buildParams(req: TurnRequest, dialect: Dialect): ChatCompletionCreateParamsStreaming {
  const params: ChatCompletionCreateParamsStreaming & Record<string, unknown> = {
    model: req.model,
    messages: toWireMessages(req.system, req.messages, dialect),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (req.tools.length) {
    params.tools = req.tools.map(
      (t): ChatCompletionTool => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.inputSchema } }),
    );
  }
  const model = bareModel(req.model);
  const level = req.thinkingLevel !== 'none' && dialect.thinks(model) ? req.thinkingLevel : null;
  if (level && dialect.reasoningParam === 'reasoning') params.reasoning = { effort: level };
  else if (level) params.reasoning_effort = level;
  if (dialect.limitedModels?.test(model)) {
    params.max_completion_tokens = ANSWER_TOKENS + THINKING_BUDGET[level ?? 'medium'];
  }
  return params;
}

function toWireMessages(system: string, messages: Message[], dialect: Dialect): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [];
  if (system) out.push({ role: 'system', content: system });
  for (const m of messages) {
    if (m.role === 'user') out.push({ role: 'user', content: m.content });
    else if (m.role === 'tool') {
      for (const r of m.results) out.push({ role: 'tool', tool_call_id: r.id, content: r.isError ? `Error: ${r.content}` : r.content });
    } else {
      out.push(assistantMessage(m, dialect) as ChatCompletionMessageParam);
    }
  }
  return out;
}

function assistantMessage(m: Extract<Message, { role: 'assistant' }>, dialect: Dialect): OpenAINative['openai'] {
  if (isNative(m.native)) {
    const msg = m.native.openai;
    if (dialect.keepsReasoningDetails || !msg.reasoning_details) return msg;
    const { reasoning_details: _dropped, ...rest } = msg;
    return rest;
  }
  const msg: OpenAINative['openai'] = { role: 'assistant', content: m.text || (m.toolCalls.length ? null : '') };
  if (m.toolCalls.length) {
    msg.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.input) } }));
  }
  return msg;
}

function isNative(native: unknown): native is OpenAINative {
  return typeof native === 'object' && native !== null && typeof (native as OpenAINative).openai === 'object';
}
