// The one place lib/ reaches concrete providers. Sandbox backends and model clients are created once per
// process, lazily (the e2b SDK is only loaded when E2B is used), and shared by every run.
import type { Config } from './config.ts';
import type { ModelClient, ModelProviderName } from './model.ts';
import type { SandboxProvider, SandboxProviderName } from './sandbox.ts';

export interface Registry {
  sandboxProvider(name: SandboxProviderName): Promise<SandboxProvider>;
  modelClient(provider: ModelProviderName): Promise<ModelClient>;
  /** The backend for a run (SPEC section 6: request > env > file > e2b if keyed > docker if it answers), or undefined. */
  chooseSandboxProvider(requested: SandboxProviderName | undefined): Promise<SandboxProviderName | undefined>;
  /** Backends already created (for the reaper). */
  loadedSandboxProviders(): SandboxProvider[];
}

export function createRegistry(config: Config): Registry {
  const sandboxes = new Map<SandboxProviderName, Promise<SandboxProvider>>();
  const loaded = new Map<SandboxProviderName, SandboxProvider>();
  const models = new Map<ModelProviderName, Promise<ModelClient>>();

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
          const apiKey = config.keys[provider];
          if (!apiKey) throw new Error(`no API key for ${provider}`);
          // Without a base URL each client uses its provider's endpoint (providers/openai.ts knows Google's and OpenRouter's).
          const opts = { provider, apiKey, baseURL: config.baseUrls[provider] };
          return provider === 'anthropic'
            ? (await import('../providers/anthropic.ts')).createAnthropicClient(opts)
            : (await import('../providers/openai.ts')).createOpenAIClient(opts);
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
