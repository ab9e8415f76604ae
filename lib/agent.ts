// The agent loop (docs/api.md#the-agent): model turns until the model stops asking for tools or maxTurns is
// reached; tool calls of one turn run in parallel inside the run's sandboxes; every step is emitted.
import type { Message, ModelClient, ThinkingLevel, ToolCall, ToolResultMessage, Usage } from './model.ts';
import { ModelError, emptyUsage } from './model.ts';
import type { StreamEvent } from './sse.ts';
import { runTool, type ToolContext, type ToolDef } from './tools.ts';
import { STRUCTURED_OUTPUT_TOOL, extractJson, structuredOutputTool, unwrapToolAnswer, type OutputFormat } from './structured.ts';
import { validateAnswer } from './schema-thread.ts';
import { log } from './log.ts';

/** Invalid structured answers sent back to the model before giving up (three answers in all). */
export const MAX_OUTPUT_RETRIES = 2;

export interface AgentOptions {
  runId: string;
  client: ModelClient;
  model: string;
  system: string;
  prompt: string;
  tools: ToolDef[];
  /** Settles when the sandboxes the tools need are ready; tool calls wait for it (a rejection ends the run). */
  toolsReady?: Promise<unknown>;
  maxTurns: number;
  thinkingLevel: ThinkingLevel;
  outputFormat?: OutputFormat;
  ctx: ToolContext;
  emit(event: StreamEvent): void;
  /** Usage is reported as it accrues, so an aborted run still records what it spent. */
  onUsage(usage: Usage, numTurns: number): void;
}

export interface AgentResult {
  subtype: 'success' | 'max_turns';
  content: string;
  structuredOutput?: unknown;
}

export async function runAgent(o: AgentOptions): Promise<AgentResult> {
  const usage = emptyUsage();
  const messages: Message[] = [{ role: 'user', content: o.prompt }];
  const byName = new Map(o.tools.map((t) => [t.spec.name, t]));
  const specs = o.tools.map((t) => t.spec);
  if (o.outputFormat) specs.push(structuredOutputTool(o.outputFormat));
  let invalidAnswers = 0;

  for (let turn = 1; ; turn++) {
    const res = await o.client.turn(
      { model: o.model, system: o.system, messages, tools: specs, thinkingLevel: o.thinkingLevel, signal: o.ctx.signal },
      {
        onText: (content) => o.emit({ type: 'assistant', subtype: 'delta', content }),
        onThinking: (content) => o.emit({ type: 'thinking', content }),
      },
    );
    usage.inputTokens += res.usage.inputTokens;
    usage.outputTokens += res.usage.outputTokens;
    usage.cacheReadTokens += res.usage.cacheReadTokens;
    usage.cacheWriteTokens += res.usage.cacheWriteTokens;
    o.onUsage(usage, turn);
    messages.push(res.message);

    const answerCall = res.toolCalls.find((c) => c.name === STRUCTURED_OUTPUT_TOOL);
    const workCalls = res.toolCalls.filter((c) => c.name !== STRUCTURED_OUTPUT_TOOL);
    const finalAnswer = workCalls.length === 0;

    // With outputFormat, a final answer (text, or a structured_output call) must validate.
    let answerFeedback: string | undefined;
    if (o.outputFormat && (answerCall || finalAnswer)) {
      const checked = await checkAnswer(o.outputFormat, answerCall, res.text);
      if (checked.ok) return { subtype: 'success', content: checked.text, structuredOutput: checked.value };
      invalidAnswers++;
      log.info('structured output did not validate', { runId: o.runId, attempt: invalidAnswers, why: checked.error });
      if (invalidAnswers > MAX_OUTPUT_RETRIES) {
        throw new ModelError(`the model's output did not match outputFormat after ${invalidAnswers} answers: ${checked.error}`, undefined, 'simplify the schema or use a more capable model');
      }
      answerFeedback = `Your answer does not match the required JSON Schema: ${checked.error}. ` +
        `Answer again with only the corrected JSON (or call ${STRUCTURED_OUTPUT_TOOL}).`;
    } else if (finalAnswer) {
      return { subtype: 'success', content: res.text };
    }

    if (turn >= o.maxTurns) return { subtype: 'max_turns', content: res.text };

    const results = await runCalls(o, workCalls, byName);
    if (answerCall) results.push({ id: answerCall.id, name: answerCall.name, content: answerFeedback ?? 'ok', isError: true });
    if (results.length) messages.push({ role: 'tool', results });
    if (answerFeedback && !answerCall) messages.push({ role: 'user', content: answerFeedback });
  }
}

async function checkAnswer(schema: OutputFormat, call: ToolCall | undefined, text: string): Promise<
  | { ok: true; value: unknown; text: string }
  | { ok: false; error: string }
> {
  let value: unknown;
  let json: string;
  if (call) {
    if (call.inputError) return { ok: false, error: call.inputError };
    value = unwrapToolAnswer(schema, call.input);
    json = JSON.stringify(value);
  } else {
    const found = extractJson(text);
    if (!found.ok) return found;
    value = found.value;
    json = found.text;
  }
  const error = await validateAnswer(schema, json); // off the event loop: its cost grows with schema x answer
  return error ? { ok: false, error } : { ok: true, value, text: json };
}

/** Emits every tool_use first, then runs the calls in parallel, emitting each tool_result as it completes. */
async function runCalls(o: AgentOptions, calls: ToolCall[], byName: Map<string, ToolDef>): Promise<ToolResultMessage[]> {
  const sandboxOf = (c: ToolCall) => byName.get(c.name)?.sandboxOf(c.input) ?? 'main';
  await o.toolsReady; // its sandbox_created comes before these calls' first event
  for (const c of calls) o.emit({ type: 'tool_use', id: c.id, toolName: c.name, input: c.input, sandbox: sandboxOf(c) });
  return Promise.all(
    calls.map(async (c): Promise<ToolResultMessage> => {
      const def = byName.get(c.name);
      const started = Date.now();
      const outcome = !def
        ? { content: `unknown tool "${c.name}"; available: ${[...byName.keys()].join(', ')}`, isError: true }
        : c.inputError
          ? { content: `invalid input for ${c.name}: ${c.inputError}`, isError: true }
          : await runTool(def, c.input, o.ctx);
      const event: StreamEvent = { type: 'tool_result', id: c.id, toolName: c.name, content: outcome.content, isError: outcome.isError, sandbox: sandboxOf(c) };
      if ('exitCode' in outcome) event.exitCode = outcome.exitCode;
      log.info('tool call', { runId: o.runId, tool: c.name, sandbox: event.sandbox, durationMs: Date.now() - started, isError: outcome.isError, exitCode: 'exitCode' in outcome ? outcome.exitCode : undefined });
      o.emit(event);
      return { id: c.id, name: c.name, content: outcome.content, isError: outcome.isError };
    }),
  );
}
