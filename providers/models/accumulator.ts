// The pure half of a model client: wire events in, deltas and one finished turn out. No SDK, no I/O, so
// each wire API's accumulator is tested by feeding it recorded event sequences.
import type { TurnResult, Usage } from '../../lib/model.ts';

/** A piece of text or reasoning to forward as it arrives. */
export interface StreamDelta {
  kind: 'text' | 'thinking';
  text: string;
}

export interface StreamAccumulator<Event> {
  /** Takes one wire event; returns the deltas it carried, in order. */
  push(event: Event): readonly StreamDelta[];
  /** The finished turn; throws IncompleteStreamError when the stream lacked the API's end marker. */
  finish(): TurnResult;
}

export const NO_DELTAS: readonly StreamDelta[] = Object.freeze([]);

/** Token figures as one wire event reports them; null or absent means "not in this event". */
export interface UsageReport {
  input?: number | null;
  output?: number | null;
  cacheRead?: number | null;
  cacheWrite?: number | null;
}

/**
 * Usage over one response. APIs report it cumulatively, sometimes more than once (Anthropic in
 * message_start and message_delta, some OpenAI-compatible servers on every chunk): a later figure replaces
 * the earlier one, never adds to it.
 */
export class UsageMeter {
  #u = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };

  report(r: UsageReport): void {
    const u = this.#u;
    this.#u = { input: r.input ?? u.input, output: r.output ?? u.output, cacheRead: r.cacheRead ?? u.cacheRead, cacheWrite: r.cacheWrite ?? u.cacheWrite };
  }

  /**
   * `inputTokens` is every input token billed. `inputCountsCache`: the API's input figure already includes
   * the cached tokens (OpenAI's prompt_tokens), rather than listing them apart (Anthropic's input_tokens).
   */
  usage(inputCountsCache: boolean): Usage {
    const { input, output, cacheRead, cacheWrite } = this.#u;
    return { inputTokens: inputCountsCache ? input : input + cacheRead + cacheWrite, outputTokens: output, cacheReadTokens: cacheRead, cacheWriteTokens: cacheWrite };
  }
}

/** The turn both APIs end with; `native` is the wire message to send back verbatim next turn. */
export function turnResult(parts: Pick<TurnResult, 'text' | 'toolCalls' | 'usage'> & { cutOff: boolean; native: unknown }): TurnResult {
  const { text, toolCalls, usage, cutOff, native } = parts;
  return {
    text,
    toolCalls,
    usage,
    stopReason: cutOff ? 'max_tokens' : toolCalls.length ? 'tool_use' : 'end',
    message: { role: 'assistant', text, toolCalls, native },
  };
}
