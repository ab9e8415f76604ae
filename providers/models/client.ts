// The model-client skeleton every wire API shares: one streamed call with abort, SDK retries and error
// classification into a ModelError, deltas forwarded as they arrive. A wire API supplies only the
// conversion to its request format, the SDK call, and a pure accumulator for its stream.
import { raceAbort } from '../../lib/abort.ts';
import type { ModelClient, ModelClientOptions, TurnRequest } from '../../lib/model.ts';
import type { StreamAccumulator } from './accumulator.ts';
import { classifySdkError, toModelError, type SdkErrorClasses } from './errors.ts';
import { sdkLogger, type SdkLogger } from './sdk-logger.ts';

/** SDK retries for 408/409/429/5xx when the options name none (the SDKs' own default). */
const DEFAULT_RETRIES = 2;

/** Thinking budgets per level; also the extra output headroom a thinking turn gets. */
export const THINKING_BUDGET = { low: 2048, medium: 8192, high: 24576 } as const;
/** Output room for the answer itself, where an API needs an output limit. */
export const ANSWER_TOKENS = 16_384;

/** What every SDK constructor is given. */
export interface SdkSettings {
  apiKey: string;
  baseURL: string;
  maxRetries: number;
  logger: SdkLogger;
}

/** One wire API, bound to an SDK client. */
export interface Wire<Params, Event> {
  /** The SDK's error classes, for classifying failures. */
  readonly errors: SdkErrorClasses;
  /** Neutral request to the API's parameters. */
  params(req: TurnRequest): Params;
  /** Sends the request; resolves once the response stream starts (after the SDK's retries). */
  send(params: Params, signal: AbortSignal): Promise<AsyncIterable<Event>>;
  /** A fresh accumulator for one response. */
  accumulator(): StreamAccumulator<Event>;
  supportsThinking(model: string): boolean;
}

/**
 * Builds a ModelClient from a wire API.
 *
 * @param opts the provider, its row, key and endpoint
 * @param connect creates the SDK client from the shared settings and returns the wire API bound to it
 * @returns the client
 * @example Usage
 * ```ts ignore
 * export const createClient = (opts: ModelClientOptions) =>
 *   createModelClient(opts, (sdk) => {
 *     const client = new Anthropic(sdk);
 *     return { errors: Anthropic, params: buildParams, send: (p, signal) => client.messages.create(p, { signal }),
 *              accumulator: () => new AnthropicAccumulator(), supportsThinking };
 *   });
 * ```
 */
export function createModelClient<Params, Event>(opts: ModelClientOptions, connect: (sdk: SdkSettings) => Wire<Params, Event>): ModelClient {
  const maxRetries = opts.maxRetries ?? DEFAULT_RETRIES;
  const wire = connect({ apiKey: opts.apiKey, baseURL: opts.baseURL, maxRetries, logger: sdkLogger(opts.provider) });
  return {
    supportsThinking: (model) => wire.supportsThinking(model),
    async turn(req, cb) {
      const params = wire.params(req);
      try {
        // Rejects at once on abort, whatever the SDK is doing (the openai SDK's retry back-off ignores the
        // signal); the SDK request gets the same signal, so the HTTP request is cancelled too.
        return await raceAbort(async () => {
          const stream = await wire.send(params, req.signal);
          const acc = wire.accumulator();
          for await (const event of stream) {
            if (req.signal.aborted) break; // both SDKs end an aborted stream quietly
            for (const d of acc.push(event)) {
              if (d.kind === 'text') cb.onText(d.text);
              else cb.onThinking(d.text);
            }
          }
          req.signal.throwIfAborted();
          return acc.finish();
        }, req.signal);
      } catch (err) {
        if (req.signal.aborted) throw req.signal.reason;
        throw toModelError(classifySdkError(err, wire.errors), { ...opts, maxRetries, model: req.model }, err);
      }
    },
  };
}
