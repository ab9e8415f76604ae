// The schema thread's side (see lib/schema-thread.ts): compiles schemas and validates answers, whatever they
// cost, away from the event loop. Compiled schemas are kept by their JSON text, so one run's answers reuse one.
import { parentPort } from 'node:worker_threads';
import { compileSchema, validateOutput, type Compiled, type OutputFormat } from './structured.ts';
import type { SchemaJob, SchemaReply } from './schema-thread.ts';

const compiled = new Map<string, { schema: OutputFormat; result: Compiled }>();
const KEEP = 16;

function compile(text: string, at: string): { schema: OutputFormat; result: Compiled } {
  const key = `${at}\n${text}`;
  let hit = compiled.get(key);
  if (hit) compiled.delete(key); // re-inserted below as the most recent
  else {
    const schema = JSON.parse(text) as OutputFormat;
    hit = { schema, result: compileSchema(schema, at) };
  }
  compiled.set(key, hit);
  if (compiled.size > KEEP) compiled.delete(compiled.keys().next().value!);
  return hit;
}

function handle(job: SchemaJob): SchemaReply {
  const { schema, result } = compile(job.schema, job.at);
  if (job.kind === 'compile') return { id: job.id, issues: result.ok ? [] : result.issues };
  if (!result.ok) return { id: job.id, error: result.error };
  let value: unknown;
  try {
    value = JSON.parse(job.answer);
  } catch {
    return { id: job.id, error: 'the answer is not valid JSON' };
  }
  return { id: job.id, error: validateOutput(schema, value) };
}

parentPort!.on('message', (job: SchemaJob) => parentPort!.postMessage(handle(job)));
