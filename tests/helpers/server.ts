// Starts a real Sandcaster server in this process on 127.0.0.1 with a temporary database, configured
// through the same loader as production (env-style variables and an optional sandcaster.json).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { loadConfig, type Config } from '../../lib/config.ts';
import { setLogSink } from '../../lib/log.ts';
import { startServer, type RunningServer } from '../../server.ts';
import { docker, TEST_IMAGE } from './docker-sandbox.ts';
import { waitFor } from './wait.ts';

export { docker, TEST_IMAGE, waitFor };

/** Log lines written by servers in this process (parsed JSON). */
export const logLines: Record<string, any>[] = [];
setLogSink((line) => logLines.push(JSON.parse(line)));

export interface TestServer extends RunningServer {
  dir: string;
  /** fetch relative to the server URL. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  query(body: unknown, headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

/** `configure` adjusts the loaded configuration where no variable can (e.g. a shorter callback retry schedule). */
export async function startTestServer(
  opts: { env?: Record<string, string | undefined>; config?: object; dir?: string; reapIntervalMs?: number; retentionIntervalMs?: number; configure?: (c: Config) => void } = {},
): Promise<TestServer> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sandcaster-test-'));
  const env: Record<string, string | undefined> = {
    SANDCASTER_DB: join(dir, 'runs.db'),
    SANDCASTER_DOCKER_IMAGE: TEST_IMAGE,
    LOG_LEVEL: 'debug',
    ...opts.env,
  };
  if (opts.config) {
    writeFileSync(join(dir, 'sandcaster.json'), JSON.stringify(opts.config));
    env.SANDCASTER_CONFIG = join(dir, 'sandcaster.json');
  }
  const config = loadConfig({ host: '127.0.0.1', port: 0 }, env);
  opts.configure?.(config);
  const running = await startServer(config, { reapIntervalMs: opts.reapIntervalMs, retentionIntervalMs: opts.retentionIntervalMs });
  const fetchRel = (path: string, init?: RequestInit) => fetch(running.url + path, init);
  let stopped = false;
  return {
    ...running,
    dir,
    fetch: fetchRel,
    query: (body, headers = {}) =>
      fetchRel('/query', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await running.shutdown();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Containers (any state) labelled as Sandcaster sandboxes, optionally of one instance. */
export async function managedContainers(instanceId?: string): Promise<Dockerode.ContainerInfo[]> {
  const label = ['sandcaster.managed=true', ...(instanceId ? [`sandcaster.instance=${instanceId}`] : [])];
  return docker.listContainers({ all: true, filters: { label } });
}

/** Volumes (sandbox workspaces) labelled as Sandcaster's, optionally of one instance. */
export async function managedVolumes(instanceId?: string): Promise<Dockerode.VolumeInspectInfo[]> {
  const label = ['sandcaster.managed=true', ...(instanceId ? [`sandcaster.instance=${instanceId}`] : [])];
  return (await docker.listVolumes({ filters: { label } })).Volumes ?? [];
}
