// Tool calls arrive in pieces (an id and a name, then fragments of JSON arguments, several calls
// interleaved by index); this puts them back together for every wire API.
import type { ToolCall } from '../../lib/model.ts';

/** One call as assembled: its stream index, the raw argument text, any extra wire fields, and the parsed call. */
export interface AssembledCall {
  index: number;
  id: string;
  name: string;
  /** The argument JSON exactly as streamed (sent back verbatim, even when it does not parse). */
  args: string;
  /** Wire fields beyond id/name/arguments (e.g. Gemini's thought signatures), kept to send back. */
  extra: Record<string, unknown>;
  call: ToolCall;
}

interface Pending {
  id: string;
  name: string;
  args: string;
  extra: Record<string, unknown>;
}

export interface CallFragment {
  id?: string | null;
  name?: string | null;
  args?: string | null;
  extra?: Record<string, unknown>;
}

export class ToolCallAssembler {
  readonly #calls = new Map<number, Pending>();

  /** Adds a fragment to the call at `index` (created on first sight); the first id and name seen are kept. */
  add(index: number, f: CallFragment): void {
    let c = this.#calls.get(index);
    if (!c) this.#calls.set(index, (c = { id: '', name: '', args: '', extra: {} }));
    if (f.id && !c.id) c.id = f.id;
    if (f.name && !c.name) c.name = f.name;
    if (f.args) c.args += f.args;
    if (f.extra) Object.assign(c.extra, f.extra);
  }

  has(index: number): boolean {
    return this.#calls.has(index);
  }

  hasId(id: string): boolean {
    for (const c of this.#calls.values()) if (c.id === id) return true;
    return false;
  }

  /** One past the highest index seen (where a call without an index goes). */
  get end(): number {
    let end = 0;
    for (const i of this.#calls.keys()) end = Math.max(end, i + 1);
    return end;
  }

  /** The calls in index order; a call without an id gets `call_<index>` (some local servers send none). */
  finish(): AssembledCall[] {
    return [...this.#calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, c]) => {
        const id = c.id || `call_${index}`;
        const { input, inputError } = parseToolInput(c.args);
        return { index, id, name: c.name, args: c.args, extra: c.extra, call: { id, name: c.name, input, ...(inputError ? { inputError } : {}) } };
      });
  }
}

/** Parses streamed tool arguments; invalid or non-object JSON gives `{}` and an `inputError` the model sees. */
export function parseToolInput(json: string): { input: Record<string, unknown>; inputError?: string } {
  if (json.trim() === '') return { input: {} }; // a tool without arguments
  try {
    const value: unknown = JSON.parse(json);
    if (value && typeof value === 'object' && !Array.isArray(value)) return { input: value as Record<string, unknown> };
    return { input: {}, inputError: `tool arguments are not a JSON object: ${json.slice(0, 200)}` };
  } catch (err) {
    return { input: {}, inputError: `tool arguments are not valid JSON (${(err as Error).message}): ${json.slice(0, 200)}` };
  }
}
