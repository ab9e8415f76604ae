// `sandcaster cancel RUN`: asks the server to cancel a run in flight (it ends within 2 s with CANCELLED).
import { EXIT } from './errors.ts';
import { Client } from './http.ts';
import type { Ctx } from './main.ts';
import { jsonLine, safe } from './render.ts';

export async function cancelCommand(ctx: Ctx, runId: string): Promise<number> {
  const body = await ctx.client.json(Client.runPath(runId, 'cancel'), { method: 'POST' });
  ctx.stdout.write(ctx.human ? `${safe(body.runId ?? runId)}: ${safe(body.status ?? 'cancelling')}\n` : jsonLine(body));
  return EXIT.OK;
}
