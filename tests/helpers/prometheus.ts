// A strict parser for the Prometheus text exposition format (0.0.4), stricter than Prometheus itself:
// every line must be a HELP, a TYPE or a sample of the family declared last; names, label names and
// escapes must be legal; a series may appear once; histogram buckets must be cumulative, in ascending `le`
// order, and end in `+Inf` equal to `_count`, with a `_sum`. It throws on the first violation, naming the line.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  samples: Sample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parses `{a="x",b="y"}` starting at `i` (just past `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, i: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = line.slice(i, eq);
    if (!LABEL.test(name) || name.startsWith('__')) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value of ${name} is not quoted`);
    let value = '';
    let j = eq + 2;
    for (;; j++) {
      const c = line[j];
      if (c === undefined) throw new Error(`${where}: unterminated label value of ${name}`);
      if (c === '"') break;
      if (c === '\\') {
        const next = line[++j];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new Error(`${where}: bad escape \\${next ?? ''} in label ${name}`);
      } else value += c;
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected "," or "}" after label ${name}`);
  }
}

const seriesKey = (s: Sample) => `${s.name}{${Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;

/** Which family a sample name belongs to, given the family declared last. */
function belongs(sample: string, family: Family): boolean {
  if (family.type === 'histogram') return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`].includes(sample);
  if (family.type === 'summary') return [family.name, `${family.name}_sum`, `${family.name}_count`].includes(sample);
  return sample === family.name;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey({ name: '', labels: rest, value: 0 });
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([parseValue(le, `${f.name} le`), s.value]);
    } else if (le !== undefined) throw new Error(`${f.name}: le on ${s.name}`);
    else if (s.name.endsWith('_sum')) g.sum = s.value;
    else g.count = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${f.name}${key}`;
    if (g.buckets.length === 0 || g.sum === undefined || g.count === undefined) throw new Error(`${where}: needs buckets, _sum and _count`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${where}: le not ascending`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${where}: buckets not cumulative at le=${g.buckets[i]![0]}`);
    }
    const last = g.buckets.at(-1)!;
    if (last[0] !== Infinity) throw new Error(`${where}: the last bucket is not le="+Inf"`);
    if (last[1] !== g.count) throw new Error(`${where}: le="+Inf" is ${last[1]} but _count is ${g.count}`);
  }
}

export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, n) => {
    const where = `line ${n + 1} (${JSON.stringify(line.slice(0, 80))})`;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!METRIC.test(name)) throw new Error(`${where}: bad metric name`);
      let f = families.get(name);
      if (f && f !== current) throw new Error(`${where}: family ${name} is not contiguous`);
      if (!f) {
        if (current && current.samples.length === 0 && current.type === 'untyped') throw new Error(`${where}: ${current.name} has HELP but no TYPE`);
        f = { name, type: 'untyped', samples: [] };
        families.set(name, f);
        current = f;
      }
      if (f.samples.length) throw new Error(`${where}: ${kind} after samples`);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: second HELP`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
        if (f.type !== 'untyped' || seen.has(`type:${name}`)) throw new Error(`${where}: second TYPE`);
        seen.add(`type:${name}`);
        f.type = rest as Family['type'];
      }
      return;
    }
    if (line.startsWith('#') || line.trim() === '') throw new Error(`${where}: neither HELP, TYPE nor a sample`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!m) throw new Error(`${where}: bad metric name`);
    const name = m[1]!;
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i + 1, where));
    if (line[i] !== ' ') throw new Error(`${where}: expected one space before the value`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]!))) throw new Error(`${where}: bad value or timestamp`);
    const sample: Sample = { name, labels, value: parseValue(parts[0]!, where) };
    if (!current || !seen.has(`type:${current.name}`) || !belongs(name, current)) throw new Error(`${where}: sample outside its declared family`);
    if (current.type === 'counter' && !(sample.value >= 0)) throw new Error(`${where}: counter below zero or NaN`);
    const key = seriesKey(sample);
    if (seen.has(key)) throw new Error(`${where}: series repeated`);
    seen.add(key);
    current.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Sum of the samples called `name` whose labels include every one given. */
export function total(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const f of families.values()) {
    for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
