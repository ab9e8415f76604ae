// Neutral turn request -> Anthropic Messages API parameters.
//
// - max_tokens = the answer's room plus the thinking budget when thinking is on (thinking tokens count
//   toward max_tokens, and the budget must stay below it), clamped to the model's output limit.
// - Thinking: budgets per level (`type: enabled`). Models from Opus 4.6 on deprecate or refuse manual
//   budgets, so they get `type: adaptive` with `output_config.effort` of the same level.
// - Prompt caching: breakpoints on the last tool, the system prompt, and the last two user messages.
//   The latest one writes this turn's conversation prefix; the one before it hits exactly what the previous
//   turn wrote (the API only looks back ~20 blocks, which a turn with many parallel tool calls exceeds).
//   Within the API's limit of 4; a prefix below the model's minimum size is simply not cached.
import type {
  ContentBlockParam,
  MessageCreateParamsStreaming,
  MessageParam,
  TextBlockParam,
  Tool,
  ToolResultBlockParam,
} from '@anthropic-ai/sdk/resources/messages';
import type { Message, ToolCall, TurnRequest } from '../../lib/model.ts';
import { ANSWER_TOKENS, THINKING_BUDGET } from '../models/client.ts';
import type { AnthropicNative } from './accumulator.ts';
import { anthropicSupportsThinking, outputLimit, usesAdaptiveThinking } from './models.ts';

const EPHEMERAL = { type: 'ephemeral' } as const;

export function buildParams(req: TurnRequest): MessageCreateParamsStreaming {
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
