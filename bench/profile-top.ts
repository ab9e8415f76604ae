// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by origin (our code,
// each node_modules package, Node internals, GC, idle), so a benchmark note can say what bounds a figure.
// Run: npx tsx bench/profile-top.ts <file.cpuprofile> [top=25] [--skip-ms N] [--callers FUNCTION]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const flagged = new Set(['--callers', '--skip-ms']);
const [file, topArg] = process.argv.slice(2).filter((a, i, all) => !flagged.has(a) && !flagged.has(all[i - 1]!));
// `--skip-ms N`: leave out the first N ms of the profile (start-up: module loading, warm-up).
const si = process.argv.indexOf('--skip-ms');
const skipUs = si > 0 ? Number(process.argv[si + 1]) * 1000 : 0;
if (!file) throw new Error('usage: bench/profile-top.ts <file.cpuprofile> [top]');
const top = Number(topArg ?? 25);
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
let elapsed = 0;
for (let i = 0; i < p.samples.length; i++) {
  elapsed += p.timeDeltas[i] ?? 0;
  if (elapsed < skipUs) continue;
  selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function origin(n: Node): string {
  const { url, functionName } = n.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url;
  const ours = /\/work\/[^/]+\/(.*)$/.exec(url);
  return ours ? `ours: ${ours[1]}` : url;
}

const fnTotals = new Map<string, number>();
const originTotals = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${origin(n)}:${n.callFrame.lineNumber + 1}`;
  fnTotals.set(key, (fnTotals.get(key) ?? 0) + us);
  const o = origin(n);
  originTotals.set(o, (originTotals.get(o) ?? 0) + us);
}
const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
const ms = (us: number) => (us / 1000).toFixed(0).padStart(7) + ' ms';
console.log(`profile ${file}: ${(total / 1000).toFixed(0)} ms sampled over ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms`);
console.log('\nself time by origin:');
for (const [o, us] of [...originTotals].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${ms(us)} ${pct(us)}  ${o}`);
console.log(`\ntop ${top} functions by self time:`);
for (const [f, us] of [...fnTotals].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ${pct(us)}  ${f}`);

// `--callers NAME`: where the self time of functions named NAME comes from (the three frames above it).
const ci = process.argv.indexOf('--callers');
if (ci > 0) {
  const name = process.argv[ci + 1]!;
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const chains = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName !== name) continue;
    const frames: string[] = [];
    for (let q = parent.get(id); q !== undefined && frames.length < (Number(process.env.DEPTH) || 12); q = parent.get(q)) {
      const f = byId.get(q)!;
      frames.push(`${f.callFrame.functionName || '(anon)'}@${origin(f).replace(/^.*\//, '')}:${f.callFrame.lineNumber + 1}`);
    }
    const key = frames.join(' < ');
    chains.set(key, (chains.get(key) ?? 0) + us);
  }
  console.log(`\ncallers of ${name}:`);
  for (const [k, us] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${ms(us)} ${pct(us)}  ${k}`);
}
