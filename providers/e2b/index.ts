// E2B sandboxes through the official `e2b` SDK (pinned 2.51.0: it creates with POST /v2/sandboxes).
//
// Endpoints come from the SDK's own env handling (E2B_DOMAIN, E2B_API_URL, E2B_SANDBOX_URL): we never pass
// domain/apiUrl/sandboxUrl, so they work exactly as the SDK documents. The API key is handed to the SDK
// per call and never reaches the sandbox (no envs, no files).
//
// Metadata on every sandbox: `sandcaster.instance` and `sandcaster.run` (the reaper and the webhook
// handler key on these). Commands run as the template's default user (`user` on E2B's base template)
// in /workspace, which create makes (owned by that user) when the template lacks it. Each command
// carries a random SANDCASTER_EXEC_ID in its environment (not a secret): it is how a timeout finds and
// kills everything the command started.
//
// This file is the factory; box.ts is one sandbox, commands.ts and files.ts what runs on it, errors.ts
// the error mapping, reap.ts the orphan reaper, shared.ts their constants and helpers.
import { Sandbox as E2bSandbox } from 'e2b';
import { WORKSPACE, type CreateOptions, type E2bSettings, type Sandbox, type SandboxProvider } from '../../lib/sandbox.ts';
import { raceAbort } from '../../lib/abort.ts';
import { log, registerSecret } from '../../lib/log.ts';
import { E2bBox } from './box.ts';
import { toSandboxError } from './errors.ts';
import { reap } from './reap.ts';
import { CREATE_TIMEOUT_MS, E2B_META_INSTANCE, E2B_META_RUN, REQUEST_TIMEOUT_MS, killQuietly } from './shared.ts';

export { E2B_META_INSTANCE, E2B_META_RUN } from './shared.ts';

export function createE2bProvider(settings: E2bSettings): SandboxProvider {
  registerSecret(settings.apiKey);
  // `retries`: the SDK retries a 429 only when it carries an integer Retry-After, and never past the
  // request timeout, so a short provider back-off is absorbed and a long one fails the run promptly.
  const conn = () => ({ apiKey: settings.apiKey, requestTimeoutMs: REQUEST_TIMEOUT_MS, retries: 2 });

  return {
    name: 'e2b',
    defaultImage: settings.template,

    async available() {
      return Boolean(settings.apiKey);
    },

    async create(opts: CreateOptions): Promise<Sandbox> {
      opts.signal?.throwIfAborted();
      const template = opts.image ?? settings.template;
      const started = Date.now();
      // The SDK call is deliberately not given the abort signal: an aborted HTTP request could leave a
      // sandbox behind whose id we never learn. Instead we stop waiting at once and kill it when it arrives.
      const creating = E2bSandbox.create(template, {
        ...conn(),
        requestTimeoutMs: CREATE_TIMEOUT_MS,
        metadata: { [E2B_META_INSTANCE]: opts.instanceId, [E2B_META_RUN]: opts.runId },
        // E2B kills it on its own a minute after the run's deadline, even if this server is gone.
        timeoutMs: (opts.timeoutSecs + 60) * 1000,
        allowInternetAccess: settings.allowInternetAccess,
        // Public traffic = reaching sandbox ports from the internet without E2B's traffic token.
        network: { allowPublicTraffic: settings.allowInternetAccess },
      });
      let sbx: E2bSandbox;
      try {
        sbx = await raceAbort(creating, opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) {
          creating.then((late) => killQuietly(late, opts.runId), () => undefined);
          throw opts.signal.reason;
        }
        throw toSandboxError(err, `creating an E2B sandbox from template "${template}"`, true);
      }
      try {
        // The base template has no /workspace; envd creates it owned by the default user.
        await raceAbort(sbx.files.makeDir(WORKSPACE, { requestTimeoutMs: REQUEST_TIMEOUT_MS }), opts.signal);
      } catch (err) {
        await killQuietly(sbx, opts.runId);
        if (opts.signal?.aborted) throw opts.signal.reason;
        throw toSandboxError(err, 'preparing /workspace in the E2B sandbox');
      }
      log.debug('e2b sandbox created', { runId: opts.runId, sandboxId: sbx.sandboxId, template, durationMs: Date.now() - started });
      return new E2bBox(sbx, opts.runId);
    },

    reap(instanceId: string, keepRunIds: ReadonlySet<string>): Promise<number> {
      return reap(conn, instanceId, keepRunIds);
    },
  };
}

/** The module interface the composition root (app.ts) loads for the `e2b` row. */
export const createProvider = createE2bProvider;
