// Regular expressions that clients or models supply (JSON Schema `pattern`, `patternProperties`) run on
// RE2 (re2js): matching time is linear in the input, never exponential as with backtracking RegExp.
// What RE2 cannot do in linear time (lookahead, lookbehind, backreferences) does not compile and is refused.
import { RE2JS } from 're2js';

export interface LinearRegExp {
  test(s: string): boolean;
  toString(): string;
}

/** Compiles an ECMAScript-syntax pattern on RE2; throws RE2's syntax error for what it cannot run. */
export function compileLinear(pattern: string): LinearRegExp {
  const re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  // Ajv keys compiled patterns by toString(), so it must differ per pattern.
  return { test: (s) => re.test(s), toString: () => `/${pattern}/ (re2)` };
}

/** Null when the pattern compiles on RE2, else why not, in a sentence. */
export function linearPatternError(pattern: string): string | null {
  try {
    compileLinear(pattern);
    return null;
  } catch (err) {
    const why = (err as Error).message.replace(/^error parsing regexp: /, '');
    return `is not a supported regular expression (${why}); lookahead, lookbehind and backreferences are not allowed, as they cannot be matched in linear time`;
  }
}

/** Ajv's `code.regExp` option: every schema pattern runs on RE2. */
export const ajvRegExp = Object.assign((pattern: string, _flags: string) => compileLinear(pattern), { code: 'compileLinear' });
