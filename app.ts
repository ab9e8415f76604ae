// The composition root's parts list: which module implements each wire API named in lib/'s tables.
// lib/ never imports providers/; concrete providers meet lib here and nowhere else.
import type { Config } from './lib/config.ts';
import type { ModelApiLoader } from './lib/model.ts';
import type { ModelApiName } from './lib/model-providers.ts';
import { createRegistry, type Registry, type SandboxModuleLoader } from './lib/registry.ts';
import type { BuiltinSandboxProviderName, SettingsOf } from './lib/sandbox-providers.ts';

/** One loader per wire API the model-provider rows speak (a row naming a new API is a compile error here until it is added). */
export const MODEL_APIS = {
  'anthropic-messages': () => import('./providers/anthropic/index.ts'),
  'openai-chat': () => import('./providers/openai/index.ts'),
} as const satisfies Record<ModelApiName, ModelApiLoader>;

/** One module per sandbox-provider row (a row without its module, or with one taking other settings, is a compile error here). */
export const SANDBOX_MODULES = {
  docker: () => import('./providers/docker/index.ts'),
  e2b: () => import('./providers/e2b/index.ts'),
} as const satisfies { [K in BuiltinSandboxProviderName]: SandboxModuleLoader<SettingsOf<K>> };

/** The registry of a production server. */
export const createAppRegistry = (config: Config): Registry => createRegistry(config, { modelApis: MODEL_APIS, sandboxModules: SANDBOX_MODULES });
