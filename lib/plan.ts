// Resolves one /query request against the configuration into everything a run needs (request > config >
// defaults), or an API error to answer before any stream starts.
import { checkCallbackUrl } from './callbacks.ts';
import { COMPOSITE_DEFAULTS, type CompositeSettings, type Config } from './config.ts';
import type { ThinkingLevel } from './model.ts';
import { providerForModel } from './model-providers.ts';
import { resolveAlias } from './models.ts';
import type { SandboxProviderName } from './sandbox.ts';
import type { QueryRequest, Upload } from './request.ts';
import { BASE_TOOL_NAMES, COMPOSITE_TOOL_NAMES } from './tool-names.ts';
import type { OutputFormat } from './structured.ts';
import type { FieldIssue } from './validate.ts';

export interface Warning {
  code: string;
  content: string;
}

export interface RunPlan {
  prompt: string;
  model: string;
  /** A key of `Config.modelProviders`. */
  provider: string;
  system: string;
  maxTurns: number;
  timeout: number;
  thinkingLevel: ThinkingLevel;
  outputFormat?: OutputFormat;
  toolNames: string[];
  files: Upload[];
  composite?: CompositeSettings;
  warnings: Warning[];
  /** Normalised and allowed; the run's record is POSTed there when it ends. */
  callbackUrl?: string;
}

export type PlanError =
  | { status: 400; details: FieldIssue[] }
  | { status: 503; code: 'NOT_CONFIGURED'; message: string; hint: string };

/** Request provider > request model's family > configured provider > configured model's family > first keyed `auto` row. */
function chooseModel(req: QueryRequest, config: Config): { model: string; provider: string } | undefined {
  const d = config.defaults;
  const table = config.modelProviders;
  const family = (model: string | undefined) => (model ? providerForModel(model, table) : undefined);
  const reqModel = req.model ? resolveAlias(req.model) : undefined;
  const cfgModel = d.model ? resolveAlias(d.model) : undefined;
  const provider =
    req.provider ??
    family(reqModel) ??
    d.provider ??
    family(cfgModel) ??
    Object.keys(table).find((name) => table[name]?.auto && config.keys[name]);
  const row = provider === undefined ? undefined : table[provider];
  if (!provider || !row) return undefined;
  // The configured model applies only when it belongs to the chosen provider (or its family is unknown);
  // a request for another provider without a model gets that provider's default model.
  const cfgFits = cfgModel !== undefined && (family(cfgModel) ?? provider) === provider;
  return { provider, model: reqModel ?? (cfgFits ? cfgModel : row.defaultModel) };
}

/** The file's composite block tightened by the request's; looser request values are clamped with a warning. */
export function resolveComposite(
  file: CompositeSettings | undefined,
  req: QueryRequest['composite'],
  warnings: Warning[],
  configured: SandboxProviderName[],
): CompositeSettings | undefined {
  if (!file && !req) return undefined;
  const base: CompositeSettings = file ?? { ...COMPOSITE_DEFAULTS, allowedProviders: configured, allowedTemplates: [] };
  if (!req) return base;
  const out = { ...base };
  const clamp = (field: 'maxSandboxes' | 'maxTotalSpawns') => {
    const asked = req[field];
    if (asked === undefined) return;
    if (asked > base[field]) warnings.push({ code: 'COMPOSITE_CLAMPED', content: `composite.${field} ${asked} is above the configured ${base[field]}; using ${base[field]}` });
    out[field] = Math.min(asked, base[field]);
  };
  clamp('maxSandboxes');
  clamp('maxTotalSpawns');
  if (req.allowedProviders) {
    const dropped = req.allowedProviders.filter((p) => !base.allowedProviders.includes(p));
    if (dropped.length) warnings.push({ code: 'COMPOSITE_CLAMPED', content: `composite.allowedProviders: ${dropped.join(', ')} not allowed by the configuration; ignored` });
    out.allowedProviders = req.allowedProviders.filter((p) => base.allowedProviders.includes(p));
  }
  if (req.allowedTemplates) {
    const dropped = req.allowedTemplates.filter((t) => !base.allowedTemplates.includes(t));
    if (dropped.length) warnings.push({ code: 'COMPOSITE_CLAMPED', content: `composite.allowedTemplates: ${dropped.join(', ')} not allowed by the configuration; ignored` });
    out.allowedTemplates = req.allowedTemplates.filter((t) => base.allowedTemplates.includes(t));
  }
  return out;
}

export function planRun(req: QueryRequest, config: Config): RunPlan | PlanError {
  const d = config.defaults;
  const rows = config.modelProviders;
  if (req.provider !== undefined && !Object.hasOwn(rows, req.provider)) {
    return { status: 400, details: [{ path: 'provider', message: `must be one of ${Object.keys(rows).join(', ')}` }] };
  }
  const callback = req.callbackUrl === undefined ? undefined : checkCallbackUrl(req.callbackUrl, config.callbacks.allowlist);
  if (callback && 'error' in callback) return { status: 400, details: [{ path: 'callbackUrl', message: callback.error }] };
  const sandboxNames = Object.keys(config.sandboxProviders);
  if (req.sandboxProvider !== undefined && !sandboxNames.includes(req.sandboxProvider)) {
    return { status: 400, details: [{ path: 'sandboxProvider', message: `must be one of ${sandboxNames.join(', ')}` }] };
  }
  const badProvider = (req.composite?.allowedProviders ?? []).findIndex((p) => !sandboxNames.includes(p));
  if (badProvider >= 0) {
    return { status: 400, details: [{ path: `composite.allowedProviders[${badProvider}]`, message: `must be one of ${sandboxNames.join(', ')}` }] };
  }
  const chosen = chooseModel(req, config);
  if (!chosen) {
    return {
      status: 503,
      code: 'NOT_CONFIGURED',
      message: 'no model provider is configured',
      hint: `set one of ${Object.values(rows).filter((r) => r.auto).map((r) => r.keyEnv).join(', ')}`,
    };
  }
  const row = rows[chosen.provider];
  if (!config.keys[chosen.provider] || !row) {
    return {
      status: 503,
      code: 'NOT_CONFIGURED',
      message: `model ${chosen.model} needs the ${chosen.provider} provider, which has no API key`,
      hint: row ? `set ${row.keyEnv} (${row.keyHint}), or choose another model or provider` : 'choose another model or provider',
    };
  }
  const warnings: Warning[] = [];
  const composite = resolveComposite(d.composite, req.composite, warnings, d.configuredSandboxProviders);
  const allowed = req.allowedTools ?? d.allowedTools;
  const available: string[] = [...BASE_TOOL_NAMES, ...(composite ? COMPOSITE_TOOL_NAMES : [])];
  if (allowed) {
    const unavailable = allowed.filter((t) => !available.includes(t));
    if (unavailable.length) {
      return { status: 400, details: [{ path: 'allowedTools', message: `${unavailable.join(', ')} need composite runs, which are not enabled` }] };
    }
  }
  return {
    prompt: req.prompt,
    ...chosen,
    system: req.systemPrompt ? `${d.systemPrompt}\n\n${req.systemPrompt}` : d.systemPrompt,
    maxTurns: req.maxTurns ?? d.maxTurns,
    timeout: req.timeout ?? d.timeout,
    thinkingLevel: req.thinkingLevel ?? d.thinkingLevel,
    outputFormat: req.outputFormat ?? d.outputFormat,
    toolNames: allowed ? available.filter((t) => allowed.includes(t)) : available,
    files: req.files,
    composite,
    warnings,
    ...(callback ? { callbackUrl: callback.url } : {}),
  };
}

export const isPlanError = (p: RunPlan | PlanError): p is PlanError => 'status' in p;
