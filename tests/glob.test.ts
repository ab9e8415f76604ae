// The transfer_files glob matcher (lib/glob.ts): the same language as the backtracking RegExp it replaced,
// checked against that RegExp on random small cases, and no blow-up on the patterns that froze it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, MAX_GLOB_CHARS } from '../lib/glob.ts';

/** The previous implementation, kept here as the reference semantics (exponential on hostile input). */
function referenceRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const matches = (glob: string, path: string) => compileGlob(glob).test(path);

describe('compileGlob', () => {
  test('* and ? stay within one segment', () => {
    assert.ok(matches('*.txt', 'a.txt'), '*.txt matches a.txt');
    assert.ok(matches('*.txt', '.txt'), '* may be empty');
    assert.ok(!matches('*.txt', 'dir/a.txt'), '* does not cross /');
    assert.ok(matches('file?.md', 'file1.md'), '? is one character');
    assert.ok(!matches('file?.md', 'file/.md'), '? is never /');
    assert.ok(!matches('file?.md', 'file.md'), '? is exactly one character');
  });

  test('** crosses folders; **/ is zero or more whole folders', () => {
    assert.ok(matches('**/*.js', 'x.js'), '**/ may be empty');
    assert.ok(matches('**/*.js', 'a/b/c/x.js'), '**/ spans folders');
    assert.ok(!matches('**/*.js', 'ax.jsx'), 'the rest must still match');
    assert.ok(matches('a/**', 'a/b/c.txt'), 'a/** is everything under a');
    assert.ok(!matches('a/**', 'ab/c'), 'a/** needs the slash');
    assert.ok(matches('**.md', 'docs/x/readme.md'), '** without / is any run');
    assert.ok(matches('a/**/b', 'a/b'), 'a/**/b includes a/b');
    assert.ok(!matches('a/**/b', 'a/xb'), '**/ ends at a folder boundary');
  });

  test('everything else is literal', () => {
    assert.ok(matches('a+b(1)[x].txt', 'a+b(1)[x].txt'), 'regex metacharacters are literal');
    assert.ok(!matches('a+b.txt', 'aab.txt'), '+ is not a quantifier');
    assert.ok(matches('src/$name^.ts', 'src/$name^.ts'), '$ and ^ are literal');
    assert.ok(!matches('a.b', 'axb'), '. is literal');
    assert.ok(matches('', ''), 'the empty pattern matches the empty path');
    assert.ok(!matches('', 'a'), 'and nothing else');
  });

  test('agrees with the reference RegExp on 20,000 random small cases', () => {
    // A fixed-seed generator, so a failure names a case that reproduces.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = (alphabet: string[], max: number) => Array.from({ length: rand(max + 1) }, () => alphabet[rand(alphabet.length)]!).join('');
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      const glob = pick(['a', 'b', '/', '*', '*', '?', '.', '**/'], 7);
      const path = pick(['a', 'b', '/', '.'], 9);
      const want = referenceRegExp(glob).test(path);
      if (want) matched++;
      assert.equal(compileGlob(glob).test(path), want, `glob ${JSON.stringify(glob)} on ${JSON.stringify(path)}`);
    }
    assert.ok(matched > 1000, `the random cases include enough matches to mean something (${matched})`);
  });

  test('the patterns that froze the RegExp finish at once', { timeout: 5000 }, () => {
    const name = 'a'.repeat(200);
    // The RegExp took ~15 s for four `**a` over 200 characters and 35 times longer for each extra one.
    assert.equal(compileGlob('**a'.repeat(12) + '**c').test(name), false);
    assert.equal(compileGlob('*a'.repeat(50) + 'c').test(name), false);
    assert.equal(compileGlob('**/a'.repeat(40) + 'c').test('a/'.repeat(100)), false);
    const deep = `${'a/'.repeat(2000)}x`;
    assert.equal(compileGlob('**/*a?'.repeat(100) + '/x').test(deep), false);
    assert.equal(compileGlob('**a'.repeat(12)).test(name), true, 'and still matches what it should');
  });

  test(`patterns over ${MAX_GLOB_CHARS} characters are refused`, () => {
    assert.throws(() => compileGlob('a'.repeat(MAX_GLOB_CHARS + 1)), /at most/);
    assert.equal(compileGlob('a'.repeat(MAX_GLOB_CHARS)).test('a'.repeat(MAX_GLOB_CHARS)), true);
  });
});
