// The "new run" form: prompt, model, files, output schema, detach. A streamed run is shown on its run page as
// it happens; the page asks the server to keep the run going if this tab goes away (onDisconnect: continue),
// so leaving or reloading the page never kills it: the run page reattaches, and has a cancel button.
import { api, ApiError } from './api.js';
import { h, runHref } from './dom.js';
import { errorBox } from './transcript.js';

const MAX_FILES = 20;
const MAX_TOTAL_BYTES = 10 * 1024 * 1024;

function toBase64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** `openRun(runId, response)`: shows the run page, taking over the stream when there is one. */
export function newRunView(main, signal, openRun) {
  const prompt = h('textarea', { id: 'new-prompt', name: 'prompt', rows: 6, required: true, placeholder: 'What should the agent do?' });
  const model = h('input', { id: 'new-model', name: 'model', placeholder: 'default (e.g. sonnet, gpt5, claude-haiku-4-5)', autocomplete: 'off', spellcheck: 'false' });
  const files = h('input', { id: 'new-files', name: 'files', type: 'file', multiple: true });
  const schema = h('textarea', { id: 'new-schema', name: 'schema', rows: 4, placeholder: '{"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}', spellcheck: 'false' });
  const detach = h('input', { id: 'new-detach', name: 'detach', type: 'checkbox' });
  const submit = h('button', { type: 'submit', id: 'new-submit' }, 'Run');
  const problem = h('div', { id: 'new-error', 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'new-run-form', class: 'panel new-run', autocomplete: 'off' },
    h('h2', {}, 'New run'),
    h('label', { for: 'new-prompt' }, 'Prompt'),
    prompt,
    h('label', { for: 'new-model' }, 'Model'),
    model,
    h('label', { for: 'new-files' }, `Files (placed in /workspace; at most ${MAX_FILES}, 10 MiB in all)`),
    files,
    h('label', { for: 'new-schema' }, 'Output schema (JSON Schema, optional)'),
    schema,
    h('label', { class: 'check' }, detach, ' Detach: start the run and open its page, without streaming it here'),
    h('div', { class: 'actions' }, submit),
    problem,
  );
  main.replaceChildren(form);
  prompt.focus();

  const fail = (e) => problem.replaceChildren(errorBox(e));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.replaceChildren();
    const body = { prompt: prompt.value };
    if (model.value.trim()) body.model = model.value.trim();
    if (schema.value.trim()) {
      try {
        body.outputFormat = JSON.parse(schema.value);
      } catch (err) {
        return fail({ code: 'INVALID_SCHEMA', content: `the output schema is not JSON: ${err.message}` });
      }
    }
    const chosen = [...files.files];
    if (chosen.length > MAX_FILES) return fail({ code: 'TOO_MANY_FILES', content: `at most ${MAX_FILES} files, got ${chosen.length}` });
    if (chosen.reduce((n, f) => n + f.size, 0) > MAX_TOTAL_BYTES) return fail({ code: 'FILES_TOO_LARGE', content: 'the files add up to more than 10 MiB' });
    if (chosen.length) body.files = await Promise.all(chosen.map(async (f) => ({ path: f.name, content: toBase64(new Uint8Array(await f.arrayBuffer())), encoding: 'base64' })));
    if (detach.checked) body.detach = true;
    else body.onDisconnect = 'continue';

    submit.disabled = true;
    submit.textContent = 'Starting…';
    try {
      // Not tied to this view's signal: the run page that takes the stream over is a new view.
      const res = await api('/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (signal.aborted) {
        // The user went elsewhere meanwhile: the run goes on (see the runs list); stop reading it here.
        await res.body?.cancel();
        return;
      }
      if (res.status === 202) {
        const accepted = await res.json();
        location.hash = runHref(accepted.runId);
        return;
      }
      const runId = res.headers.get('x-run-id');
      if (!runId) throw new ApiError(res.status, { error: { code: 'NO_RUN_ID', message: 'the server sent no X-Run-Id header' } });
      openRun(runId, res);
    } catch (err) {
      if (signal.aborted) return;
      submit.disabled = false;
      submit.textContent = 'Run';
      fail(err instanceof ApiError ? { code: err.code, content: err.message + detailsText(err), hint: err.hint } : { code: 'NETWORK', content: String(err?.message ?? err) });
    }
  });
}

const detailsText = (err) => (Array.isArray(err.details) && err.details.length ? ` (${err.details.map((d) => `${d.path}: ${d.message}`).join('; ')})` : '');
