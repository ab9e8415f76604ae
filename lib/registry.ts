// The one place lib/ reaches concrete providers. Sandbox backends and model clients are created once per
// process, lazily (the e2b SDK is only loaded when E2B is used), and shared by every run. Model clients come
// from the modules the composition root (app.ts) names for each wire API.
import type { Config } from './config.ts';
import { log } from './log.ts';
import type { ModelApiLoader, ModelClient } from './model.ts';
import type { SandboxProvider, SandboxProviderName } from './sandbox.ts';

/** A provider module: creates the backend from the settings its row resolved. */
export interface SandboxModule<S = any> {
  createProvider(settings: S): SandboxProvider;
}
export type SandboxModuleLoader<S = any> = () => Promise<SandboxModule<S>>;

export interface Registry {
  sandboxProvider(name: SandboxProviderName): Promise<SandboxProvider>;
  /** The client of a provider of `config.modelProviders`; rejects when it has no key or its API no module. */
  modelClient(provider: string): Promise<ModelClient>;
  /**
   * The backend for a run: the request's choice > SANDCASTER_SANDBOX_PROVIDER > sandcaster.json > the first row
   * of the table that picks itself (E2B when keyed, then Docker when it answers); undefined when none is usable
   * (docs/configuration.md#choosing-a-sandbox-provider).
   */
  chooseSandboxProvider(requested: SandboxProviderName | undefined): Promise<SandboxProviderName | undefined>;
  /** What to tell an operator when `name` (or, without a name, every automatic choice) was not usable. */
  notUsableHint(name?: SandboxProviderName): string;
  /** Backends already created (for the reaper). */
  loadedSandboxProviders(): SandboxProvider[];
  /** At shutdown, after the runs are drained: each loaded backend stops its background work (warm pools). Never rejects. */
  closeSandboxProviders(): Promise<void>;
}

/** The concrete parts the composition root plugs in. */
export interface RegistryParts {
  /** The module of each wire API named in the model-provider table, loaded on first use. */
  modelApis: Readonly<Record<string, ModelApiLoader>>;
  /** The module of each sandbox-provider row, loaded on first use (the e2b SDK only when E2B is used). */
  sandboxModules: Readonly<Record<string, SandboxModuleLoader>>;
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
        const load = Object.hasOwn(parts.sandboxModules, name) ? parts.sandboxModules[name] : undefined;
        if (!load || !Object.hasOwn(config.sandboxProviders, name)) throw new Error(`unknown sandbox provider ${name}`);
        const provider = (await load()).createProvider(config.sandboxes[name]);
        loaded.set(name, provider);
        return provider;
      })();
      p.catch(() => sandboxes.delete(name)); // a failed load is retried by the next caller
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
      const rows = config.sandboxProviders;
      const explicit = requested ?? config.defaults.sandboxProvider;
      if (explicit !== undefined) {
        const row = Object.hasOwn(rows, explicit) ? rows[explicit] : undefined;
        if (!row) return undefined;
        // A trusted explicit choice is not pinged: a backend that is down ends the run with SANDBOX_ERROR and
        // a hint. Others must be configured and answer, else it is a configuration problem (503).
        if (row.trustExplicitChoice) return explicit;
        return row.configured(config.sandboxes[explicit]) && (await usable(explicit)) ? explicit : undefined;
      }
      for (const [name, row] of Object.entries(rows)) {
        if (row.auto === 'never' || !row.configured(config.sandboxes[name])) continue;
        if (row.auto === 'configured' || (await usable(name))) return name;
      }
      return undefined;
    },
    /** The hint for a backend that was chosen but is not usable. */
    notUsableHint(name) {
      const rows = config.sandboxProviders;
      if (name !== undefined) return Object.hasOwn(rows, name) ? rows[name]!.notUsableHint : `unknown sandbox provider ${name}`;
      return Object.values(rows).filter((r) => r.auto !== 'never').map((r) => r.notUsableHint).join(', or ');
    },
    loadedSandboxProviders: () => [...loaded.values()],
    async closeSandboxProviders() {
      const close = (p: SandboxProvider) => p.close?.().catch((err) => log.warn('closing a sandbox provider failed', { provider: p.name, error: err }));
      await Promise.all([...loaded.values()].map(close));
    },
  };
}

