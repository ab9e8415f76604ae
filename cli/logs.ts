// `sandcaster logs RUN [--follow]`: a run's stored events; with --follow, then the live ones to its end.
import { EXIT } from './errors.ts';
import { Client } from './http.ts';
import type { Ctx } from './main.ts';
import { HumanRenderer, JsonRenderer, type Renderer } from './render.ts';
import { followRun } from './sse.ts';

export async function logsCommand(ctx: Ctx, runId: string, o: { follow: boolean }): Promise<number> {
  const run = await ctx.client.json(Client.runPath(runId));
  // Without --follow, a run in flight is shown up to the last event stored when we asked.
  const until = !o.follow && run.status === 'running' && typeof run.lastEventId === 'number' ? run.lastEventId : undefined;
  const renderer: Renderer = ctx.human ? new HumanRenderer(ctx.stdout, { color: ctx.color, spinner: o.follow }) : new JsonRenderer(ctx.stdout);
  try {
    const { terminal } = await followRun({
      client: ctx.client,
      runId,
      until,
      onEvent: (e, _id, raw) => renderer.event(e, raw),
      onReconnect: ({ attached, lastEventId, attempt, error }) => {
        if (attached) ctx.say(`reattached to ${runId} after event ${lastEventId}`);
        else if (attempt === 1) ctx.say(`connection lost (${error}); reattaching to ${runId} from event ${lastEventId}…`);
      },
    });
    renderer.stop();
    if (terminal) return terminal.type === 'result' ? EXIT.OK : EXIT.RUN_ERROR;
    if (until !== undefined && ctx.human) ctx.say(`${runId} is still running; sandcaster logs ${runId} --follow to stay with it`);
    return EXIT.OK;
  } finally {
    renderer.stop();
  }
}
