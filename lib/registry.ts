// The one place lib/ reaches concrete providers. Sandbox backends and model clients are created once per
// process, lazily (the e2b SDK is only loaded when E2B is used), and shared by every run. Model clients come
// from the modules the composition root (app.ts) names for each wire API.
import type { Config } from './config.ts';
import type { ModelApiLoader, ModelClient } from './model.ts';
import type { SandboxProvider, SandboxProviderName } from './sandbox.ts';

export interface Registry {
  sandboxProvider(name: SandboxProviderName): Promise<SandboxProvider>;
  /** The client of a provider of `config.modelProviders`; rejects when it has no key or its API no module. */
  modelClient(provider: string): Promise<ModelClient>;
  /** The backend for a run (docs/configuration.md#choosing-a-sandbox-provider: request > env > file > e2b if keyed > docker if it answers), or undefined. */
  chooseSandboxProvider(requested: SandboxProviderName | undefined): Promise<SandboxProviderName | undefined>;
  /** Backends already created (for the reaper). */
  loadedSandboxProviders(): SandboxProvider[];
}

/** The concrete parts the composition root plugs in. */
export interface RegistryParts {
  /** The module of each wire API named in the model-provider table, loaded on first use. */
  modelApis: Readonly<Record<string, ModelApiLoader>>;
}

/**
 * The providers of one server process.
 *
 * @example Usage
 * ```ts
 * import { loadConfig } from './config.ts';
 * import { createRegistry } from './registry.ts';
 * declare const parts: import('./registry.ts').RegistryParts; // app.ts builds this
 * const registry = createRegistry(loadConfig(), parts);
 * const client = await registry.modelClient('anthropic');
 * ```
 */
export function createRegistry(config: Config, parts: RegistryParts): Registry {
  const sandboxes = new Map<SandboxProviderName, Promise<SandboxProvider>>();
  const loaded = new Map<SandboxProviderName, SandboxProvider>();
  const models = new Map<string, Promise<ModelClient>>();

  const sandboxProvider = (name: SandboxProviderName): Promise<SandboxProvider> => {
    let p = sandboxes.get(name);
    if (!p) {
      p = (async () => {
        const provider =
          name === 'docker'
            ? (await import('../providers/docker/index.ts')).createDockerProvider(config.docker)
            : (await import('../providers/e2b.ts')).createE2bProvider(config.e2b);
        loaded.set(name, provider);
        return provider;
      })();
      sandboxes.set(name, p);
    }
    return p;
  };

  // A positive availability check is trusted for a few seconds, so a busy server does not ping the
  // engine before every run; a failure is always re-checked.
  const okUntil = new Map<SandboxProviderName, number>();
  const usable = async (name: SandboxProviderName): Promise<boolean> => {
    if ((okUntil.get(name) ?? 0) > Date.now()) return true;
    const ok = await (await sandboxProvider(name)).available();
    if (ok) okUntil.set(name, Date.now() + 5000);
    return ok;
  };

  return {
    sandboxProvider,
    modelClient(provider) {
      let c = models.get(provider);
      if (!c) {
        c = (async () => {
          const descriptor = Object.hasOwn(config.modelProviders, provider) ? config.modelProviders[provider] : undefined;
          if (!descriptor) throw new Error(`unknown model provider ${provider}`);
          const apiKey = config.keys[provider];
          if (!apiKey) throw new Error(`no API key for ${provider} (${descriptor.keyEnv})`);
          const load = Object.hasOwn(parts.modelApis, descriptor.api) ? parts.modelApis[descriptor.api] : undefined;
          if (!load) throw new Error(`no module for the ${descriptor.api} API of ${provider}`);
          const baseURL = config.baseUrls[provider] ?? descriptor.endpoint;
          return (await load()).createClient({ provider, descriptor, apiKey, baseURL });
        })();
        models.set(provider, c);
      }
      return c;
    },
    async chooseSandboxProvider(requested) {
      const explicit = requested ?? config.defaults.sandboxProvider;
      // An explicit Docker choice is not pinged: if the engine is down, the run itself ends with
      // SANDBOX_ERROR and a hint (issue 4). E2B without a key is a configuration problem (503).
      if (explicit === 'docker') return explicit;
      if (explicit) return (await usable(explicit)) ? explicit : undefined;
      if (config.e2b.apiKey) return 'e2b';
      return (await usable('docker')) ? 'docker' : undefined;
    },
    loadedSandboxProviders: () => [...loaded.values()],
  };
}
