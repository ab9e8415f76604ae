// Shared helpers for the benchmarks: statistics, tables, the machine/date line, a server child process with
// CPU/RSS readings from /proc, and a light SSE client on node:http (so the client costs little next to the
// server it measures). Everything talks to 127.0.0.1 only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';

export const ROOT = join(import.meta.dirname, '..');
export const IMAGE = process.env.SANDCASTER_TEST_IMAGE ?? 'sandcaster-test:busybox';
export const docker = new Docker();

// ---------- statistics and output ----------

export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}
export const median = (xs: number[]) => quantile(xs, 0.5);
export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((v, c) => v.padEnd(widths[c]!)).join(' | ') + ' |';
  return [line(cells[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

let engineVersion: string | undefined;
export async function machineLine(): Promise<string> {
  engineVersion ??= await docker
    .version()
    .then((v) => v.Version)
    .catch(() => 'unreachable');
  const cpu = cpus();
  return (
    `machine: ${cpu[0]?.model.trim()} x${cpu.length}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, ` +
    `Node ${process.version}, Docker engine ${engineVersion}; date: ${new Date().toISOString()}`
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.now();

// ---------- /proc readings of a child ----------

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU time of a process, in ms (resolution 1000/CLK_TCK ms). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // utime, stime (fields 14, 15)
}

/** Current and peak resident set size of a process, in MiB. */
export function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

// ---------- server child ----------

export interface ServerChild {
  proc: ChildProcess;
  pid: number;
  url: string;
  port: number;
  instanceId: string;
  db: string;
  /** Log lines at warn or error (kept for the report), and counts per level. */
  problems: Record<string, unknown>[];
  /** Every log line, parsed, when started with `keepLogs`. */
  logs: Record<string, any>[];
  stop(): Promise<void>;
}

/**
 * Starts `entry` (server.ts or bench/standin-server.ts) as `node --import tsx <entry> serve` on 127.0.0.1
 * with a fresh database (`root`: run another checkout's server, for before/after comparisons). Its stdout (JSON log lines) is read and dropped, except warnings and errors.
 */
export async function startServerChild(opts: { entry?: string; env?: Record<string, string>; nodeArgs?: string[]; root?: string; keepLogs?: boolean } = {}): Promise<ServerChild> {
  const dir = mkdtempSync(join(tmpdir(), 'sandcaster-bench-'));
  const db = join(dir, 'runs.db');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', opts.entry ?? 'server.ts', 'serve', '--host', '127.0.0.1', '--port', '0'], {
    cwd: opts.root ?? ROOT, // another checkout of the server, for before/after comparisons in one run
    // The memory budget admits at most host memory / (memoryMb + in-memory storage) sandboxes: 11 of the default
    // 2 GiB on a 24 GiB host. Benchmark sandboxes run `true` and hold almost nothing, and what is measured here
    // is the server and the engine, so the budget is lifted (tests/memory-admission.test.ts covers admission).
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/root', SANDCASTER_DOCKER_IMAGE: IMAGE, SANDCASTER_DB: db, SANDCASTER_MAX_SANDBOX_MEMORY_MB: '10000000', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const problems: Record<string, unknown>[] = [];
  const logs: Record<string, any>[] = [];
  const exited = once(proc, 'exit');
  const ready = await new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (opts.keepLogs) logs.push(JSON.parse(line));
      if (line.includes('"msg":"listening"')) resolve(JSON.parse(line));
      else if (line.includes('"level":"warn"') || line.includes('"level":"error"')) {
        const o = JSON.parse(line);
        if (!/SANDCASTER_API_KEY is not set/.test(o.msg)) problems.push(o);
      }
    });
    exited.then(([code]) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  const url: string = ready.url;
  return {
    proc,
    pid: proc.pid!,
    url,
    port: Number(new URL(url).port),
    instanceId: ready.instanceId,
    db,
    problems,
    logs,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------- SSE client ----------

export const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

export interface RunOutcome {
  status: number;
  /** Milliseconds from sending the request. */
  firstEventMs: number;
  endMs: number;
  /** Type of the terminal event (result / error), or undefined when the stream ended without one. */
  terminal?: string;
  terminalData?: Record<string, any>;
  events: number;
  runId?: string;
  /** Set when the request failed (connection error) or was aborted by the caller. */
  failure?: string;
}

export interface StreamOpts {
  /** Called for every event with its type and raw data text (JSON), at the moment it was parsed. */
  onEvent?: (type: string, data: string) => void;
  /** Abort the request after this many ms (a client disconnect). */
  disconnectAfterMs?: number;
}

/** POSTs /query and reads the SSE stream to its end, parsing only the framing (`event:` and `data:` lines). */
export function streamRun(baseUrl: string, body: object, opts: StreamOpts = {}): Promise<RunOutcome> {
  const u = new URL('/query', baseUrl);
  const payload = JSON.stringify(body);
  const t0 = now();
  return new Promise((resolve) => {
    const out: RunOutcome = { status: 0, firstEventMs: NaN, endMs: NaN, events: 0 };
    let settled = false;
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      out.endMs = now() - t0;
      if (failure) out.failure = failure;
      resolve(out);
    };
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        out.status = res.statusCode ?? 0;
        out.runId = res.headers['x-run-id'] as string | undefined;
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const e = block.indexOf('\nevent: ');
            if (e < 0) continue; // a ping comment, or a non-SSE error body
            const d = block.indexOf('\ndata: ', e);
            const type = block.slice(e + 8, d);
            const data = block.slice(d + 7);
            if (out.events++ === 0) out.firstEventMs = now() - t0;
            opts.onEvent?.(type, data);
            if (type === 'result' || type === 'error') {
              out.terminal = type;
              out.terminalData = JSON.parse(data);
            }
          }
        });
        res.on('end', () => {
          if (out.status !== 200 && buf) out.terminalData = safeJson(buf);
          finish();
        });
        res.on('error', (err) => finish(err.message));
        res.on('aborted', () => finish('aborted'));
      },
    );
    req.on('error', (err) => finish(settled ? undefined : err.message));
    if (opts.disconnectAfterMs !== undefined) {
      setTimeout(() => {
        if (settled) return;
        req.destroy();
        finish('disconnected');
      }, opts.disconnectAfterMs);
    }
    req.end(payload);
  });
}

function safeJson(s: string): Record<string, any> | undefined {
  try {
    return JSON.parse(s);
  } catch {
    return { text: s };
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
    }),
  );
  return out;
}

// ---------- Docker ----------

export async function managedContainers(instanceId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: ['sandcaster.managed=true', `sandcaster.instance=${instanceId}`] } });
}

export async function managedVolumes(instanceId: string): Promise<number> {
  const { Volumes } = await docker.listVolumes({ filters: { label: ['sandcaster.managed=true', `sandcaster.instance=${instanceId}`] } });
  return (Volumes ?? []).length;
}

/** Removes whatever a bench instance left behind (only ever that instance's containers and volumes). */
export async function cleanupInstance(instanceId: string): Promise<void> {
  for (const c of await managedContainers(instanceId)) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  const { Volumes } = await docker.listVolumes({ filters: { label: [`sandcaster.instance=${instanceId}`] } });
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {});
}

// ---------- machine load ----------

/** Busy CPU time of the whole machine (all cores), in ms, from /proc/stat. */
function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as number[];
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1000) / CLK_TCK;
}

/**
 * Measures, over an interval, how much CPU the whole machine used and how much of it was not ours (other
 * processes: the Docker engine, other users' jobs), in cores. `ours` are pids whose CPU is ours besides this one.
 */
export function loadMeter(ours: () => number[]) {
  const ownCpu = () => ours().reduce((a, pid) => a + safeCpu(pid), 0) + (process.cpuUsage().user + process.cpuUsage().system) / 1000;
  const t0 = now();
  const busy0 = machineBusyMs();
  const own0 = ownCpu();
  return () => {
    const wall = now() - t0;
    const busy = machineBusyMs() - busy0;
    const own = ownCpu() - own0;
    return { machineCores: busy / wall, ourCores: own / wall, otherCores: Math.max(0, busy - own) / wall };
  };
}

function safeCpu(pid: number): number {
  try {
    return cpuMs(pid);
  } catch {
    return 0;
  }
}

export function loadLine(l: { machineCores: number; ourCores: number; otherCores: number }): string {
  return `load during the measurement: machine ${fmt(l.machineCores, 2)} of ${cpus().length} cores busy (bench processes ${fmt(l.ourCores, 2)}, everything else ${fmt(l.otherCores, 2)})`;
}
