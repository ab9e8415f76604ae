// Small text helpers shared by tools, events and artifacts.

export const MAX_TOOL_RESULT_CHARS = 30_000;

/** Past `max` chars keep the first and last half around a line saying how much was left out (docs/api.md#event-types). */
export function truncateMiddle(text: string, max = MAX_TOOL_RESULT_CHARS): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  // Never split a UTF-16 surrogate pair: the client would see U+FFFD.
  let head = half;
  let tail = text.length - half;
  if (isLowSurrogate(text.charCodeAt(head))) head--;
  if (isLowSurrogate(text.charCodeAt(tail))) tail++;
  return `${text.slice(0, head)}\n[... ${tail - head} characters omitted ...]\n${text.slice(tail)}`;
}

const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of `bytes` when they are valid UTF-8 without NUL bytes, else null (treated as binary). */
export function decodeText(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}
