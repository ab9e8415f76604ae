// `sandcaster run "PROMPT"`: starts a run and streams it to its end. The run is started with
// onDisconnect "continue" so that a dropped connection is picked up again (Last-Event-ID) instead of
// ending the run; Ctrl-C (or SIGTERM, SIGHUP) cancels it explicitly.
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { text } from 'node:stream/consumers';
import { CliError, EXIT, usageError } from './errors.ts';
import { Client } from './http.ts';
import type { Ctx } from './main.ts';
import { fileEventBytes, writeUnder } from './out-dir.ts';
import { HumanRenderer, JsonRenderer, jsonLine, safe, type Renderer } from './render.ts';
import { followRun, type RunEvent } from './sse.ts';

const MAX_FILES = 20;
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
/** After Ctrl-C: how long to wait for the run's own end (it ends within 2 s of a cancel) before leaving. */
const CANCEL_WAIT_MS = 10_000;

export interface RunOptions {
  prompt: string;
  files: string[];
  model?: string;
  schema?: string;
  out?: string;
  detach: boolean;
}

/** The request body: prompt, uploads, schema, model. Local problems are usage errors (exit 2). */
async function buildBody(ctx: Ctx, o: RunOptions): Promise<Record<string, unknown>> {
  const prompt = o.prompt === '-' ? await text(ctx.stdin) : o.prompt;
  if (prompt.trim() === '') throw usageError('the prompt is empty');
  const body: Record<string, unknown> = { prompt };
  if (o.model !== undefined) body.model = o.model;
  if (o.files.length > MAX_FILES) throw usageError(`at most ${MAX_FILES} --file, got ${o.files.length}`);
  const seen = new Set<string>();
  let total = 0;
  const files = o.files.map((p) => {
    let size: number;
    try {
      const st = statSync(p);
      if (!st.isFile()) throw usageError(`--file ${p} is not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw usageError(`--file ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    total += size;
    if (total > MAX_UPLOAD_BYTES) throw usageError(`the --file uploads add up to more than 10 MiB (at ${p})`);
    const name = basename(p);
    if (seen.has(name)) throw usageError(`two --file uploads have the same name ${JSON.stringify(name)}`);
    seen.add(name);
    return { path: name, content: readFileSync(p).toString('base64'), encoding: 'base64' };
  });
  if (files.length) body.files = files;
  if (o.schema !== undefined) {
    let raw: string;
    try {
      raw = readFileSync(o.schema, 'utf8');
    } catch (err) {
      throw usageError(`--schema ${o.schema}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      body.outputFormat = JSON.parse(raw);
    } catch (err) {
      throw usageError(`--schema ${o.schema} is not JSON: ${(err as Error).message}`);
    }
  }
  return body;
}

const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export async function runCommand(ctx: Ctx, o: RunOptions): Promise<number> {
  if (o.detach && o.out !== undefined) throw usageError('--out needs the run to finish here; with --detach, fetch them later with: sandcaster files RUN --out DIR');
  const body = await buildBody(ctx, o);

  if (o.detach) {
    const accepted = await ctx.client.json('/query', post({ ...body, detach: true }));
    if (ctx.human) ctx.stdout.write(`${safe(accepted.runId)} started (detached)\n  follow: sandcaster logs ${safe(accepted.runId)} --follow\n  cancel: sandcaster cancel ${safe(accepted.runId)}\n`);
    else ctx.stdout.write(jsonLine(accepted));
    return EXIT.OK;
  }

  const renderer: Renderer = ctx.human ? new HumanRenderer(ctx.stdout, { color: ctx.color, spinner: true }) : new JsonRenderer(ctx.stdout);
  const stopFollowing = new AbortController();
  let runId: string | undefined;
  let interrupted = 0;
  let writeFailures = 0;

  const cancel = async (id: string) => {
    ctx.say(`cancelling ${id}… (Ctrl-C again to quit without waiting)`);
    setTimeout(() => stopFollowing.abort(), CANCEL_WAIT_MS).unref();
    try {
      await ctx.client.request(Client.runPath(id, 'cancel'), { method: 'POST' });
    } catch (err) {
      // 409: it had just finished; the stream shows how.
      if (!(err instanceof CliError)) throw err;
      ctx.say(err.message);
    }
  };
  const onSignal = () => {
    interrupted++;
    if (interrupted > 1) {
      renderer.stop();
      process.exit(EXIT.INTERRUPTED);
    }
    if (runId) void cancel(runId);
    else ctx.say('cancelling once the run has started…');
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);

  try {
    const res = await ctx.client.request('/query', post({ ...body, onDisconnect: 'continue' }));
    runId = res.headers.get('x-run-id') ?? undefined;
    if (!runId) throw new CliError(EXIT.REFUSED, 'the server sent no X-Run-Id header; is this a Sandcaster server?');
    if (interrupted) void cancel(runId);
    const id = runId;
    const { terminal } = await followRun({
      client: ctx.client,
      runId: id,
      first: res,
      signal: stopFollowing.signal,
      onEvent: (e: RunEvent, _id: number, raw: string) => {
        renderer.event(e, raw);
        if (e.type === 'file' && o.out !== undefined) {
          try {
            const saved = writeUnder(o.out, String(e.path), fileEventBytes(e));
            if (ctx.human) (renderer as HumanRenderer).note(`    saved ${saved}`);
          } catch (err) {
            writeFailures++;
            ctx.say(`could not save ${JSON.stringify(safe(e.path))}: ${(err as Error).message}`);
          }
        }
      },
      onReconnect: ({ attached, lastEventId, attempt, error }) => {
        if (attached) ctx.say(`reattached to ${id} after event ${lastEventId}`);
        else if (attempt === 1) ctx.say(`connection lost (${error}); reattaching to ${id} from event ${lastEventId}…`);
      },
    });
    renderer.stop();
    if (interrupted) return EXIT.INTERRUPTED;
    if (terminal?.type === 'result') return writeFailures ? EXIT.RUN_ERROR : EXIT.OK;
    if (!terminal) ctx.say(`${id} ended without a result`);
    return EXIT.RUN_ERROR;
  } finally {
    renderer.stop();
    for (const s of signals) process.off(s, onSignal);
  }
}
