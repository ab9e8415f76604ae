// A linear pre-scan of JSON text, before JSON.parse: JSON.parse blocks the event loop for its whole run,
// and on a 16 MiB body the shape decides how long (measured on 2 busy cores: 8M nested arrays 6-28 s,
// 5.6M empty objects 4 s, 8M numbers 1.3 s; one 16 MiB string 0.1-0.3 s). No request needs more than a few
// thousand values or a few dozen levels, so text past these bounds is refused without being parsed.

export const JSON_LIMITS = { depth: 64, values: 100_000 };

// Where the scan stops outside strings; the gaps between (spaces, digits, literals) are skipped natively.
const STOP = /["[\]{},]/g;

/**
 * Null when `text` nests at most JSON_LIMITS.depth deep and holds at most about JSON_LIMITS.values values
 * (counted as containers plus commas), else why not. The syntax is JSON.parse's business: text that is not
 * JSON passes (or stops early) and JSON.parse rejects it. Linear, and it stops at the first limit passed:
 * every stop counts toward a limit, closes a container counted before, or is one of at most two strings
 * per value (a key and its value), and string contents are skipped a character at a time over short
 * stretches and with indexOf over long ones.
 */
export function jsonShapeError(text: string, limits = JSON_LIMITS): string | null {
  let depth = 0;
  let values = 0;
  let strings = 0;
  STOP.lastIndex = 0;
  while (STOP.test(text)) {
    const at = STOP.lastIndex - 1; // test() finds the next stop without building a match object
    const c = text.charCodeAt(at);
    if (c === 0x22) {
      if (++strings > 2 * values + 2) return null; // more strings than keys and values: not JSON
      const end = stringEnd(text, at);
      if (end < 0) return null; // unterminated: not JSON
      STOP.lastIndex = end + 1;
    } else if (c === 0x5d || c === 0x7d) {
      if (--depth < 0) return null; // a close with no open: not JSON
    } else {
      if (++values > limits.values) return `holds more than ${limits.values} values`;
      if (c !== 0x2c && ++depth > limits.depth) return `nests deeper than ${limits.depth} levels`;
    }
  }
  return null;
}

/** Index of the quote closing the string that opens at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  const n = text.length;
  let j = open + 1;
  for (;;) {
    // A short stretch character by character; `j` always lands on a character that is not escaped.
    const stop = Math.min(n, j + 64);
    for (; j < stop; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x5c) j++;
      else if (c === 0x22) return j;
    }
    if (j >= n) return -1;
    // Then a jump to the next quote: it closes the string unless an odd run of backslashes precedes it.
    const q = text.indexOf('"', j);
    if (q < 0) return -1;
    let k = q - 1;
    while (k >= j && text.charCodeAt(k) === 0x5c) k--;
    if ((q - 1 - k) % 2 === 0) return q;
    j = q + 1;
  }
}
