// docs/ matches the code (issue 12): every environment variable the server reads is in
// docs/configuration.md and every one listed there is read; likewise every sandcaster.json field; every
// source file has its line in docs/architecture.md and the README shows the same layer picture; every
// pointer into docs/ from code or docs names a heading that exists. Rows marked [pending: ...] describe work
// landing in parallel: they may be absent from the code, and once the code has them the mark must go.
// Pure: reads files only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compositeSchema } from '../lib/config.ts';
import { SANDBOX_PROVIDERS } from '../lib/sandbox-providers.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function filesUnder(dir: string, ext: RegExp): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return name === 'node_modules' ? [] : filesUnder(path, ext);
    return ext.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The server's own source: what ships and runs. */
const SERVER_SOURCES = ['server.ts', 'app.ts', 'commands.ts', ...filesUnder('routes', /\.(ts|mjs)$/), ...filesUnder('lib', /\.(ts|mjs)$/), ...filesUnder('providers', /\.(ts|mjs)$/)];

/** A fence line: three or more backticks or tildes, and no backtick after (CommonMark; "```` ```json ````" is inline code). */
const FENCE = /^\s*(`{3,}|~{3,})[^`]*$/;

/** Lines of a markdown file outside fenced code blocks. */
function proseLines(md: string): string[] {
  let fenced = false;
  return md.split('\n').filter((line) => {
    if (FENCE.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** The lines of one `## ` section (its subsections included), without its heading. */
function section(md: string, heading: string): string[] {
  const lines = proseLines(md);
  const start = lines.findIndex((l) => l.trim() === `## ${heading}`);
  assert.ok(start >= 0, `no "## ${heading}" section`);
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Backticked names in the first cell of each table row, and whether the row is marked pending. */
function tableNames(lines: string[], name: RegExp): { name: string; pending: boolean }[] {
  return lines
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .flatMap((l) => {
      const first = l.split('|')[1] ?? '';
      const pending = l.includes('[pending:');
      return [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((n) => name.test(n)).map((n) => ({ name: n, pending }));
    });
}

/** What GitHub makes of a heading for its anchor. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

const anchorsOf = (md: string) => new Set(proseLines(md).flatMap((l) => (/^#{1,6} /.test(l) ? [slug(l.replace(/^#+ /, ''))] : [])));

/** Compares a documented list with what the code has; pending rows may be missing from the code, never present in it. */
function compare(what: string, doc: { name: string; pending: boolean }[], code: Set<string>, where: string) {
  const documented = new Set(doc.map((d) => d.name));
  const undocumented = [...code].filter((n) => !documented.has(n)).sort();
  assert.deepEqual(undocumented, [], `${what} the code reads but ${where} does not list: ${undocumented.join(', ')}`);
  const stale = doc.filter((d) => !d.pending && !code.has(d.name)).map((d) => d.name);
  assert.deepEqual(stale, [], `${what} ${where} lists but the code does not read (remove them, or mark the row [pending: ...]): ${stale.join(', ')}`);
  const landed = doc.filter((d) => d.pending && code.has(d.name)).map((d) => d.name);
  assert.deepEqual(landed, [], `${what} marked [pending: ...] in ${where} that the code now reads (remove the mark): ${landed.join(', ')}`);
}

describe('docs/configuration.md', () => {
  const doc = read('docs/configuration.md');

  test('lists exactly the environment variables the server reads', () => {
    const code = new Set<string>();
    const patterns = [
      /\(\s*env\s*,\s*'([A-Z][A-Z0-9_]*)'/g, // envStr(env, 'X'), envInt(env, 'X', ...), ...
      /\benv\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g,
      /\benv\.([A-Z][A-Z0-9_]*)\b/g,
      /\bprocess\.env\.([A-Z][A-Z0-9_]*)\b/g,
      /\bprocess\.env\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g,
      /\b(?:keyEnv|baseUrlEnv):\s*'([A-Z][A-Z0-9_]*)'/g, // the model-provider rows
    ];
    for (const file of SERVER_SOURCES) {
      const src = read(file);
      for (const re of patterns) for (const m of src.matchAll(re)) code.add(m[1]!);
    }
    // The sandbox-provider rows name the variables they (or their SDK) read.
    for (const row of Object.values(SANDBOX_PROVIDERS)) for (const name of row.envVars) code.add(name);
    // Read by a library on our behalf: documented apart, and not expected in our code.
    const byLibraries = tableNames(section(doc, 'Variables read by libraries'), /^[A-Z][A-Z0-9_]*$/).map((r) => r.name);
    for (const name of byLibraries) code.delete(name);
    assert.ok(code.has('SANDCASTER_DB') && code.has('ANTHROPIC_API_KEY'), `the scan finds variables: ${[...code].join(', ')}`);
    const listed = tableNames(section(doc, 'Environment variables'), /^[A-Z][A-Z0-9_]*$/);
    compare('environment variables', listed, code, 'docs/configuration.md "Environment variables"');
  });

  test('lists exactly the sandcaster.json fields the server accepts', () => {
    // Top-level fields: the entries of lib/config-file.ts's file schema (not exported; read from its source).
    const src = read('lib/config-file.ts');
    const block = src.slice(src.indexOf('const baseFileEntries = {')).split('\n');
    const top = block.slice(1, block.findIndex((l) => l === '};')).flatMap((l) => /^ {2}(\w+): v\.optional\(/.exec(l)?.[1] ?? []);
    // Blocks: composite's schema, and each sandbox-provider row's block under its name.
    const entriesOf = (schema: any): string[] => Object.keys(schema.entries ?? schema.pipe?.find((p: any) => p.entries)?.entries ?? {});
    const code = new Set([
      ...top,
      ...entriesOf(compositeSchema).map((k) => `composite.${k}`),
      ...Object.entries(SANDBOX_PROVIDERS).flatMap(([name, row]) => [name, ...entriesOf(row.fileSchema).map((k) => `${name}.${k}`)]),
    ]);
    assert.ok(code.has('port') && code.has('docker.image') && code.has('composite.maxSandboxes'), `the scan finds fields: ${[...code].join(', ')}`);
    const listed = tableNames(section(doc, 'sandcaster.json'), /^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)?$/);
    compare('sandcaster.json fields', listed, code, 'docs/configuration.md "sandcaster.json"');
  });
});

describe('docs/architecture.md and the README match the tree', () => {
  const arch = read('docs/architecture.md');

  test('every source file has its line under "Where things live", and every line names a file that exists', () => {
    const rows = tableNames(section(arch, 'Where things live'), /\.(ts|mjs)$/);
    const listed = new Set(rows.map((r) => r.name));
    const missing = SERVER_SOURCES.filter((f) => !listed.has(f));
    assert.deepEqual(missing, [], `files without a line in docs/architecture.md "Where things live": ${missing.join(', ')}`);
    const gone = rows.filter((r) => !r.pending && !existsSync(join(root, r.name))).map((r) => r.name);
    assert.deepEqual(gone, [], `docs/architecture.md lists files that do not exist: ${gone.join(', ')}`);
  });

  test('the README shows the same layer picture as docs/architecture.md', () => {
    const picture = (md: string, file: string) => {
      const m = /<!-- layers:start -->\n([\s\S]*?)<!-- layers:end -->/.exec(md);
      assert.ok(m, `${file} has a picture between <!-- layers:start --> and <!-- layers:end -->`);
      return m[1]!;
    };
    assert.equal(picture(read('README.md'), 'README.md'), picture(arch, 'docs/architecture.md'), 'the two pictures differ');
  });
});

describe('pointers into docs/ resolve', () => {
  const docs = Object.fromEntries(filesUnder('docs', /\.md$/).map((f) => [f, read(f)]));
  const anchors = Object.fromEntries(Object.entries(docs).map(([f, md]) => [f, anchorsOf(md)]));
  const check = (target: string, anchor: string | undefined, from: string, broken: string[]) => {
    if (!docs[target]) broken.push(`${from} -> ${target} (no such file)`);
    else if (anchor && !anchors[target]!.has(anchor)) broken.push(`${from} -> ${target}#${anchor} (no such heading)`);
  };

  test('from code comments: every docs/<file>.md#<heading> names a heading that exists', () => {
    const sources = [...SERVER_SOURCES, ...filesUnder('tests', /\.(ts|mjs)$/), ...filesUnder('bench', /\.ts$/)];
    const broken: string[] = [];
    let count = 0;
    for (const file of sources) {
      for (const m of read(file).matchAll(/\bdocs\/([\w-]+\.md)(?:#([\w-]+))?/g)) {
        count++;
        check(`docs/${m[1]}`, m[2], relative('.', file), broken);
      }
    }
    assert.ok(count >= 27, `pointers found: ${count}`);
    assert.deepEqual(broken, [], `broken pointers: ${broken.join('; ')}`);
  });

  test('from the docs and the README: every link to a doc or a heading resolves', () => {
    const broken: string[] = [];
    for (const [file, md] of [...Object.entries(docs), ['README.md', read('README.md')] as const]) {
      const here = file === 'README.md' ? '' : 'docs/';
      for (const m of proseLines(md).join('\n').matchAll(/\]\(([\w./-]*\.md)?(?:#([\w-]+))?\)/g)) {
        if (!m[1] && !m[2]) continue;
        const target = m[1] ? (m[1].startsWith('docs/') ? m[1] : here + m[1]) : file;
        if (!target.startsWith('docs/') && target !== file) continue; // README's own links to BENCHMARKS.md etc.
        if (target === 'README.md') {
          if (m[2] && !anchorsOf(md).has(m[2])) broken.push(`README.md -> #${m[2]}`);
          continue;
        }
        check(target, m[2], file, broken);
      }
    }
    assert.deepEqual(broken, [], `broken links: ${broken.join('; ')}`);
  });
});
