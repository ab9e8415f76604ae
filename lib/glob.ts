// Glob patterns from the model (transfer_files), matched without backtracking.

/** Longest pattern accepted; matching costs at most (pattern length + 1) x (path length) steps. */
export const MAX_GLOB_CHARS = 1024;

const enum Op {
  Char, // one given character
  One, // `?`: one character other than '/'
  Star, // `*`: any run of characters other than '/'
  Any, // `**`: any run of characters, '/' included
  Skip, // reads nothing; may jump past the next ops (the optional group that `**/` is)
}

export interface Glob {
  readonly pattern: string;
  /** True when the whole of `path` matches. */
  test(path: string): boolean;
}

/**
 * Compiles a glob: `*` any run within one path segment, `?` one character within a segment, `**` any run
 * across folders (followed by `/` it means zero or more whole folders); every other character is literal.
 * The pattern becomes a small automaton that `test` runs over the path once, tracking every position the
 * pattern could be at (as an RE2-style engine does), so no pattern, however many stars it has, costs more
 * than (pattern length + 1) x (path length) steps; a backtracking RegExp can take exponential time instead.
 *
 * @example
 *   const g = compileGlob('logs/*.txt');
 *   g.test('logs/a.txt');     // true
 *   g.test('logs/old/a.txt'); // false: `*` stays within one folder
 *   compileGlob('src/**').test('src/a/b/c.ts'); // true
 */
export function compileGlob(pattern: string): Glob {
  if (pattern.length > MAX_GLOB_CHARS) throw new RangeError(`a glob is at most ${MAX_GLOB_CHARS} characters, got ${pattern.length}`);
  const ops: Op[] = [];
  const args: number[] = []; // the character of a Char, the jump target of a Skip
  const push = (op: Op, arg = -1) => {
    // Runs of stars collapse: `**` then `*` (or `*` then `**`) is just `**`.
    const last = ops.length - 1;
    if ((op === Op.Star || op === Op.Any) && (ops[last] === Op.Star || ops[last] === Op.Any)) {
      if (op === Op.Any) ops[last] = Op.Any;
      return;
    }
    ops.push(op);
    args.push(arg);
  };
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern.charCodeAt(i);
    if (ch === STAR && pattern.charCodeAt(i + 1) === STAR) {
      i++;
      if (pattern.charCodeAt(i + 1) === SLASH) {
        i++;
        // `**/` is `(any run, then '/')` or nothing: Skip may jump past the Any and the '/'.
        const at = ops.length;
        ops.push(Op.Skip, Op.Any, Op.Char);
        args.push(at + 3, -1, SLASH);
      } else push(Op.Any);
    } else if (ch === STAR) push(Op.Star);
    else if (ch === QUESTION) push(Op.One);
    else push(Op.Char, ch);
  }
  return { pattern, test: (path) => run(ops, args, path) };
}

const STAR = 42; // '*'
const SLASH = 47; // '/'
const QUESTION = 63; // '?'

/** Simulates the automaton: states are pattern positions 0..n (n = matched); each step is O(live states). */
function run(opList: Op[], argList: number[], path: string): boolean {
  const n = opList.length;
  const ops = Uint8Array.from(opList);
  const args = Int32Array.from(argList);
  // `seen[s] === stamp` marks s as already in the set being built; a new stamp per step clears it in O(1).
  const seen = new Uint32Array(n + 1);
  let stamp = 1;
  let live = new Int32Array(n + 1);
  let next = new Int32Array(n + 1);
  let liveLen = 0;
  let nextLen = 0;
  // Adds s, and every state reachable from it without reading a character (past stars, through Skips), to next.
  const add = (s: number): void => {
    while (seen[s] !== stamp) {
      seen[s] = stamp;
      next[nextLen++] = s;
      if (s === n) return;
      const op = ops[s];
      if (op === Op.Skip) add(args[s]!);
      else if (op !== Op.Star && op !== Op.Any) return;
      s++;
    }
  };
  add(0);
  for (let i = 0; ; i++) {
    [live, next] = [next, live];
    liveLen = nextLen;
    if (liveLen === 0) return false;
    if (i === path.length) break;
    nextLen = 0;
    stamp++;
    const c = path.charCodeAt(i);
    for (let k = 0; k < liveLen; k++) {
      const s = live[k]!;
      const op = ops[s];
      if (s === n) continue;
      if (op === Op.Char) {
        if (c === args[s]) add(s + 1);
      } else if (op === Op.One) {
        if (c !== SLASH) add(s + 1);
      } else if (op === Op.Star) {
        if (c !== SLASH) add(s);
      } else if (op === Op.Any) add(s);
    }
  }
  return seen[n] === stamp;
}
