// `sandcaster files RUN [--out DIR]`: the files a run returned; with --out, their bytes, each checked
// against the sha256 the server lists.
import { createHash } from 'node:crypto';
import { CliError, EXIT } from './errors.ts';
import { Client } from './http.ts';
import type { Ctx } from './main.ts';
import { writeUnder } from './out-dir.ts';
import { fmtBytes, jsonLine, safe } from './render.ts';

export async function filesCommand(ctx: Ctx, runId: string, o: { out?: string }): Promise<number> {
  const run = await ctx.client.json(Client.runPath(runId));
  const files: { path: string; size: number; sha256: string }[] = Array.isArray(run.files) ? run.files : [];
  if (o.out === undefined) {
    for (const f of files) ctx.stdout.write(ctx.human ? `${safe(f.path)}  ${fmtBytes(f.size)}  ${safe(f.sha256).slice(0, 12)}\n` : jsonLine(f));
    if (ctx.human && files.length === 0) ctx.stdout.write(`${safe(runId)} returned no files\n`);
    return EXIT.OK;
  }
  let failures = 0;
  for (const f of files) {
    const res = await ctx.client.request(Client.runPath(runId, 'files', ...f.path.split('/').map(encodeURIComponent)));
    const bytes = new Uint8Array(await res.arrayBuffer());
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== f.sha256 || bytes.byteLength !== f.size) {
      failures++;
      ctx.say(`${safe(f.path)}: got ${bytes.byteLength} bytes with sha256 ${sha256}, expected ${f.size} bytes with ${safe(f.sha256)}; not saved`);
      continue;
    }
    try {
      const saved = writeUnder(o.out, f.path, bytes);
      ctx.stdout.write(ctx.human ? `saved ${safe(saved)} (${fmtBytes(f.size)})\n` : jsonLine({ ...f, savedTo: saved }));
    } catch (err) {
      if (err instanceof CliError) throw err;
      failures++;
      ctx.say(`could not save ${JSON.stringify(safe(f.path))}: ${(err as Error).message}`);
    }
  }
  return failures ? EXIT.RUN_ERROR : EXIT.OK;
}
