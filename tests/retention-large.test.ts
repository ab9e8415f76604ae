// Retention over a large store never holds the event loop for long: the check runs in slices with a turn of
// the event loop between them. A real SQLite file with many finished runs, stored events (one run with
// hundreds of thousands) and file contents; the event loop's longest delay is measured while it prunes.
// The assertion is on the CPU time of the longest slice (the work the check does at once); the wall-clock
// figures are printed too, and on a shared, busy machine they include time the process was not scheduled.
// RETENTION_SCALE=10 builds a store ten times larger (for a one-off measurement).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Retention } from '../lib/retention.ts';
import { RunStore } from '../lib/store.ts';
import { INSERT_EVENT, ensureEventsTable } from './helpers/events-table.ts';
import './helpers/server.ts'; // log lines go to the test sink, not stdout

const SCALE = Number(process.env.RETENTION_SCALE ?? 1);
const RUNS = 10_000 * SCALE;
const EVENTS_PER_RUN = 20;
const FILE_EVERY = 10; // one run in ten returned a file
const FILE_BYTES = 50_000;
const LONG_RUN_EVENTS = 200_000; // one long run: its events are counted and removed in chunks

test(`retention prunes a large store (${RUNS} runs) without blocking the event loop for 100 ms`, { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandcaster-retention-large-'));
  const path = join(dir, 'runs.db');
  const store = new RunStore(path);
  const db = new Database(path);
  try {
    ensureEventsTable(db);
    const built = performance.now();
    const day = 86_400_000;
    const t0 = Date.now() - 60 * day;
    const insertRun = db.prepare(
      `INSERT INTO runs (id, prompt_preview, prompt_chars, model, provider, sandbox_provider, status, started_at, completed_at) VALUES (?, 'p', 1, 'm', 'anthropic', 'docker', ?, ?, ?)`,
    );
    const insertEvent = db.prepare(INSERT_EVENT);
    const insertFile = db.prepare(`INSERT INTO run_files (run_id, path, size, sha256) VALUES (?, 'out.bin', ?, 'x')`);
    const insertChunk = db.prepare(`INSERT INTO run_file_chunks (run_id, path, seq, data) VALUES (?, 'out.bin', 0, ?)`);
    const eventData = JSON.stringify({ type: 'assistant', subtype: 'delta', content: 'y'.repeat(150) });
    const fileBytes = Buffer.alloc(FILE_BYTES, 7);
    const id = (i: number) => `run_${String(i).padStart(8, '0')}`;
    // Runs spread over 60 days, oldest first; the long run is the oldest of all.
    db.transaction(() => {
      for (let i = 0; i < RUNS; i++) {
        const at = new Date(t0 + Math.floor((i * 60 * day) / RUNS)).toISOString();
        insertRun.run(id(i), 'completed', at, at);
      }
      insertRun.run('run_inflight', 'running', new Date(t0).toISOString(), null);
    })();
    for (let from = 0; from < RUNS; from += 1000) {
      db.transaction(() => {
        for (let i = from; i < Math.min(RUNS, from + 1000); i++) {
          for (let e = 1; e <= EVENTS_PER_RUN; e++) insertEvent.run(id(i), e, eventData);
          if (i % FILE_EVERY === 0) {
            insertFile.run(id(i), FILE_BYTES);
            insertChunk.run(id(i), fileBytes);
          }
        }
      })();
    }
    for (let from = 0; from < LONG_RUN_EVENTS; from += 10_000) {
      db.transaction(() => {
        for (let e = from + EVENTS_PER_RUN + 1; e <= from + 10_000 + EVENTS_PER_RUN; e++) insertEvent.run(id(0), e, eventData);
      })();
    }
    db.transaction(() => {
      for (let e = 1; e <= 1000; e++) insertEvent.run('run_inflight', e, eventData);
    })();
    const totalEvents = (db.prepare(`SELECT COUNT(*) AS n FROM run_events`).get() as { n: number }).n;
    const buildMs = Math.round(performance.now() - built);

    // Keep 30 days (about half the runs) and at most 20 MiB: most of the newer half goes too.
    const limits = { days: 30, mb: 10 * SCALE };
    const retention = new Retention(store, { limits, inFlight: () => new Set(['run_inflight']) });
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const report = await retention.check();
    delay.disable();
    assert.ok(report, 'the check completed');
    const maxDelayMs = delay.max / 1e6;
    console.log(
      `# ${RUNS} runs, ${totalEvents} events, ${RUNS / FILE_EVERY} files (built in ${buildMs} ms): ` +
        `check ${report.durationMs} ms, expired ${report.expiredRuns} runs, freed ${(report.freedBytes / 1048576).toFixed(1)} MiB, ` +
        `kept ${(report.keptBytes / 1048576).toFixed(1)} MiB; longest slice ${report.longestSliceCpuMs} ms CPU (${report.longestSliceMs} ms wall), ` +
        `event loop max delay ${maxDelayMs.toFixed(1)} ms wall; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
    );
    assert.ok(report.longestSliceCpuMs < 100, `no slice did 100 ms of work: longest ${report.longestSliceCpuMs} ms CPU`);

    // What it did is right: within both limits, oldest gone first, the run in flight untouched.
    assert.ok(report.keptBytes <= limits.mb * 1048576, `kept ${report.keptBytes} bytes`);
    const cutoff = new Date(Date.now() - 30 * day).toISOString();
    const oldKept = db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE events_expired = 0 AND completed_at < ?`).get(cutoff) as { n: number };
    assert.equal(oldKept.n, 0, 'no run older than 30 days keeps its events');
    const newestExpired = db.prepare(`SELECT MAX(completed_at) AS at FROM runs WHERE events_expired = 1`).get() as { at: string };
    const oldestKept = db.prepare(`SELECT MIN(completed_at) AS at FROM runs WHERE events_expired = 0 AND completed_at IS NOT NULL`).get() as { at: string };
    assert.ok(newestExpired.at <= oldestKept.at, `every expired run is older than every kept one: ${newestExpired.at} vs ${oldestKept.at}`);
    const orphans = db.prepare(`SELECT COUNT(*) AS n FROM run_events e JOIN runs r ON r.id = e.run_id WHERE r.events_expired = 1`).get() as { n: number };
    assert.equal(orphans.n, 0, 'expired runs hold no events');
    const blobs = db.prepare(`SELECT COUNT(*) AS n FROM run_file_chunks c JOIN runs r ON r.id = c.run_id WHERE r.events_expired = 1`).get() as { n: number };
    assert.equal(blobs.n, 0, 'expired runs hold no file bytes');
    const listed = db.prepare(`SELECT COUNT(*) AS n FROM run_files f JOIN runs r ON r.id = f.run_id WHERE r.events_expired = 1 AND f.stored = 0`).get() as { n: number };
    assert.ok(listed.n > 0, `their file lists stay, marked not stored: ${listed.n}`);
    assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM run_events WHERE run_id = 'run_inflight'`).get() as { n: number }).n, 1000, 'the run in flight kept every event');
    assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE status = 'completed'`).get() as { n: number }).n, RUNS, 'every row stays');
    assert.equal(store.keptResult(id(0))?.lastEventId, LONG_RUN_EVENTS + EVENTS_PER_RUN, 'the last event id outlives the events');

    // A second check finds everything measured and within the limits: nothing to do.
    const again = await retention.check();
    assert.equal(again?.expiredRuns, 0, `nothing more to expire: ${JSON.stringify(again)}`);
    console.log(`# second check: ${again?.durationMs} ms`);
  } finally {
    db.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
