// The real probes behind `sandcaster doctor` (lib/doctor.ts): the Docker engine through the same client the
// Docker provider uses, and E2B through one sandbox listing (authenticated, cheap, creates nothing).
import type { Config } from '../lib/config.ts';
import { PROBE_TIMEOUT_MS, type DoctorProbes } from '../lib/doctor.ts';
import { engineClient } from './docker/engine.ts';

export function createDoctorProbes(config: Config): DoctorProbes {
  const docker = engineClient(config.sandboxes.docker.host);
  return {
    docker: {
      where: config.sandboxes.docker.host ?? 'the local socket (/var/run/docker.sock)',
      async version() {
        const v = await docker.version();
        return { version: v.Version, apiVersion: v.ApiVersion };
      },
      async hasImage(image) {
        try {
          await docker.getImage(image).inspect();
          return true;
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === 404) return false;
          throw err;
        }
      },
      async runtimes() {
        return Object.keys(((await docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? {});
      },
    },
    async e2b(apiKey) {
      const { Sandbox } = await import('e2b'); // loaded only when a key is set, like the provider
      await Sandbox.list({ apiKey, requestTimeoutMs: PROBE_TIMEOUT_MS, retries: 0, limit: 1 }).nextItems();
    },
  };
}
