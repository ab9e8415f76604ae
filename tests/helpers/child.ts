// Runs the real server as a child process (for signals, crashes and the CLI), reading its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TEST_IMAGE } from './server.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export interface ChildServer {
  proc: ChildProcess;
  url: string;
  instanceId: string;
  logs: Record<string, any>[];
  stderr: string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export async function spawnServer(env: Record<string, string>, args: string[] = []): Promise<ChildServer> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server.ts', 'serve', '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, SANDCASTER_DOCKER_IMAGE: TEST_IMAGE, LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, any>[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = once(proc, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const listening = new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const obj = JSON.parse(line); // stdout holds JSON lines only: this throws otherwise
      logs.push(obj);
      if (obj.msg === 'listening') resolve(obj);
    });
    exited.then((c) => reject(new Error(`server exited (${c}) before listening: ${stderr}`)));
  });
  const ready = await listening;
  const child: ChildServer = {
    proc,
    url: ready.url,
    instanceId: ready.instanceId,
    logs,
    get stderr() {
      return stderr;
    },
    exited,
    fetch: (path, init) => fetch(ready.url + path, init),
  };
  return child;
}
