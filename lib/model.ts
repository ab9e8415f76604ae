// The interface every model wire API implements (providers/anthropic/, providers/openai/).
// Messages are kept in a neutral shape; each API converts them to its wire format.
import type { ModelProviderDescriptor } from './model-providers.ts';

export type ThinkingLevel = 'none' | 'low' | 'medium' | 'high';

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the tool's input object. */
  inputSchema: Record<string, unknown>;
}

export interface ToolCall {
  id: string;
  name: string;
  /** Parsed arguments; a provider that receives unparseable JSON passes `{}` and sets `inputError`. */
  input: Record<string, unknown>;
  inputError?: string;
}

export interface ToolResultMessage {
  id: string;
  name: string;
  content: string;
  isError: boolean;
}

export type Message =
  | { role: 'user'; content: string }
  | {
      role: 'assistant';
      text: string;
      toolCalls: ToolCall[];
      /** Provider-native content to send back verbatim (e.g. Anthropic thinking blocks with signatures). */
      native?: unknown;
    }
  | { role: 'tool'; results: ToolResultMessage[] };

export interface Usage {
  /** Every input token billed, cache reads and writes included. */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface TurnRequest {
  model: string;
  system: string;
  messages: Message[];
  tools: ToolSpec[];
  thinkingLevel: ThinkingLevel;
  signal: AbortSignal;
}

export interface TurnCallbacks {
  onText(delta: string): void;
  onThinking(delta: string): void;
}

export interface TurnResult {
  text: string;
  toolCalls: ToolCall[];
  usage: Usage;
  /** 'tool_use' when the model asked for tools, 'max_tokens' when it was cut off, else 'end'. */
  stopReason: 'end' | 'tool_use' | 'max_tokens';
  /** The assistant message to append to the conversation. */
  message: Extract<Message, { role: 'assistant' }>;
}

/**
 * A client for one provider, shared by every run that uses it.
 *
 * @example Usage
 * ```ts
 * import type { ModelClient, TurnRequest } from './model.ts';
 * async function ask(client: ModelClient, req: TurnRequest): Promise<string> {
 *   const res = await client.turn(req, { onText: (d) => process.stdout.write(d), onThinking: () => {} });
 *   return res.text; // res.toolCalls lists what the model asked to run
 * }
 * ```
 */
export interface ModelClient {
  /** One streamed model call. Rejects with ModelError (or the signal's reason when aborted). */
  turn(req: TurnRequest, cb: TurnCallbacks): Promise<TurnResult>;
  /** Whether `thinkingLevel` means anything for this model id. */
  supportsThinking(model: string): boolean;
}

export interface ModelClientOptions {
  /** The provider's name in the model-provider table... */
  provider: string;
  /** ...and its row (key and endpoint variables for error hints). */
  descriptor: ModelProviderDescriptor;
  apiKey: string;
  baseURL: string;
  /** SDK retries for 408/409/429/5xx (the SDK's default is 2). */
  maxRetries?: number;
}

/** What the module of a wire API exports; app.ts loads it lazily, so an SDK is only loaded when used. */
export interface ModelApi {
  createClient(opts: ModelClientOptions): ModelClient;
}

export type ModelApiLoader = () => Promise<ModelApi>;

export class ModelError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelError';
  }
}

export const emptyUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
