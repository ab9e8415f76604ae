// `sandcaster runs`: recent runs, newest first, as a table on a terminal or one JSON object per line.
import { EXIT, usageError } from './errors.ts';
import type { Ctx } from './main.ts';
import { fmtCost, jsonLine, safe, styler } from './render.ts';

const STATUSES = ['running', 'completed', 'error', 'cancelled'];
const STATUS_STYLE = { running: 'blue', completed: 'green', error: 'red', cancelled: 'yellow' } as const;

export async function runsCommand(ctx: Ctx, o: { status?: string; limit?: string; before?: string }): Promise<number> {
  const q = new URLSearchParams();
  if (o.limit !== undefined) {
    if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > 200) throw usageError(`--limit must be a whole number from 1 to 200, got ${JSON.stringify(o.limit)}`);
    q.set('limit', o.limit);
  }
  if (o.status !== undefined) {
    if (!STATUSES.includes(o.status)) throw usageError(`--status must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(o.status)}`);
    q.set('status', o.status);
  }
  if (o.before !== undefined) q.set('before', o.before);
  const runs: Record<string, any>[] = await ctx.client.json(`/runs${q.size ? `?${q}` : ''}`);
  if (!ctx.human) {
    for (const r of runs) ctx.stdout.write(jsonLine(r));
    return EXIT.OK;
  }
  if (runs.length === 0) {
    ctx.stdout.write('no runs\n');
    return EXIT.OK;
  }
  const c = styler(ctx.color);
  const rows = runs.map((r) => [
    safe(r.status),
    safe(r.id),
    safe(r.model),
    fmtCost(r.costUsd).replace('cost unknown', '—'),
    `${r.inputTokens ?? 0}/${r.outputTokens ?? 0}`,
    String(r.numTurns ?? 0),
    r.status === 'running' ? '…' : typeof r.durationSecs === 'number' ? `${r.durationSecs.toFixed(1)}s` : '—',
    safe(r.startedAt).replace('T', ' ').slice(0, 19),
  ]);
  const head = ['STATUS', 'RUN', 'MODEL', 'COST', 'TOKENS', 'TURNS', 'TIME', 'STARTED'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const pad = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ');
  const used = widths.reduce((a, b) => a + b + 2, 0);
  const room = Math.max(10, (ctx.stdout.columns || 120) - used - 1);
  const prompt = (r: Record<string, any>) => {
    const one = safe(r.prompt).replace(/\s+/g, ' ').trim();
    return one.length > room ? one.slice(0, room - 1) + '…' : one;
  };
  ctx.stdout.write(c('dim', `${pad(head)}  PROMPT`) + '\n');
  rows.forEach((cells, i) => {
    const status = runs[i]!.status as keyof typeof STATUS_STYLE;
    const line = pad(cells);
    const styled = STATUS_STYLE[status] ? c(STATUS_STYLE[status], line.slice(0, widths[0]!)) + line.slice(widths[0]!) : line;
    ctx.stdout.write(`${styled}  ${prompt(runs[i]!)}\n`);
  });
  if (runs.length === Number(o.limit ?? 20)) ctx.stdout.write(c('dim', `more: sandcaster runs --before ${safe(runs.at(-1)!.id)}${o.status ? ` --status ${o.status}` : ''}`) + '\n');
  return EXIT.OK;
}
