// A few seconds of bench/fuzz-http.ts against a real server process: every kind of malformed, slow, huge
// and half-closed request, with /health probed throughout. The full run is `node --import tsx bench/fuzz-http.ts`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KINDS, formatReport, fuzz } from '../bench/fuzz-http.ts';
import { spawnServer, type ChildServer } from './helpers/child.ts';

const dir = mkdtempSync(join(tmpdir(), 'sandcaster-fuzz-'));
let child: ChildServer;

before(async () => {
  child = await spawnServer({
    SANDCASTER_DB: join(dir, 'fuzz.db'),
    SANDCASTER_E2B_WEBHOOK_SECRET: 'whsec-fuzz-test-0123456789',
    SANDCASTER_HEADERS_TIMEOUT_SECONDS: '1',
    SANDCASTER_BODY_TIMEOUT_SECONDS: '1',
  });
});
after(async () => {
  child?.proc.kill('SIGTERM');
  await child?.exited;
  rmSync(dir, { recursive: true, force: true });
});

test('a short fuzz: the server survives, /health never fails, malformed input is 4xx and never a 500', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const report = await fuzz({ url: child.url, seconds: 5, requests: 2000, concurrency: 8, seed, caseMs: 2500, hugeBytes: 32 * 1024 * 1024 });
  const summary = `seed ${seed} (rerun with FUZZ_SEED=${seed})\n${formatReport(report, child.proc.exitCode === null)}`;
  assert.equal(child.proc.exitCode, null, `the server died: ${child.stderr}\n${summary}`);
  assert.equal(report.healthFailures, 0, summary);
  assert.equal(report.serverErrors, 0, summary);
  assert.ok(!('500' in report.statuses), summary);
  for (const kind of KINDS) assert.ok(report.sent[kind] > 0, `every kind was sent: ${summary}`);
  assert.ok((report.statuses['400'] ?? 0) > 0, `malformed requests were refused with 400: ${summary}`);
  assert.ok(report.maxHugeBytesSent < 32 * 1024 * 1024, `no huge body was taken whole: ${summary}`);
  assert.equal(child.logs.filter((l) => l.level === 'error').length, 0, `no error logged: ${JSON.stringify(child.logs.filter((l) => l.level === 'error').slice(0, 3))}`);
  assert.doesNotMatch(child.stderr, /Uncaught|TypeError|URIError/, 'nothing was thrown');
});
