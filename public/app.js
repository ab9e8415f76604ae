// The dashboard's entry: hash routes (#/ the runs list, #/runs/<id> a run, #/new the form) and the API-key
// prompt. Each view gets an AbortSignal that fires when the view is left (streams closed, blob URLs freed).
import { apiKey, onKeyNeeded } from './api.js';
import { listView } from './list.js';
import { newRunView } from './new-run.js';
import { runView } from './run.js';

const main = document.getElementById('main');
const keyPrompt = document.getElementById('key-prompt');
const keyForm = document.getElementById('key-form');
const keyInput = document.getElementById('key-input');
const keyError = document.getElementById('key-error');
const forgetKey = document.getElementById('forget-key');

let current = { id: null, controller: new AbortController() };

/** The route of a hash: an id (same id, same view: nothing to redo) and how to render it. */
function route(hash) {
  const path = hash.replace(/^#/, '') || '/';
  const m = /^\/runs\/([^/?]+)$/.exec(path);
  if (m) {
    let runId;
    try {
      runId = decodeURIComponent(m[1]);
    } catch {
      runId = m[1];
    }
    return { id: `run:${runId}`, render: (signal) => runView(main, runId, signal) };
  }
  if (path === '/new') return { id: 'new', render: (signal) => newRunView(main, signal, openRun) };
  const q = path.startsWith('/?') ? path.slice(2) : '';
  return { id: `list:${q}`, render: (signal) => listView(main, new URLSearchParams(q), signal) };
}

function show(r) {
  if (r.id === current.id) return;
  current.controller.abort();
  current = { id: r.id, controller: new AbortController() };
  document.body.dataset.view = r.id.split(':')[0];
  r.render(current.controller.signal);
}

/** From the form: the run page takes over the /query stream; the hash change that follows is a no-op. */
function openRun(runId, response) {
  const r = { id: `run:${runId}`, render: (signal) => runView(main, runId, signal, { first: response }) };
  show(r);
  location.hash = `#/runs/${encodeURIComponent(runId)}`;
}

window.addEventListener('hashchange', () => show(route(location.hash)));

onKeyNeeded(
  (refused) =>
    new Promise((resolve) => {
      keyError.hidden = !refused;
      keyError.textContent = refused ? 'The server refused that key; try again.' : '';
      keyPrompt.hidden = false;
      main.hidden = true;
      keyInput.value = '';
      keyInput.focus();
      keyForm.onsubmit = (ev) => {
        ev.preventDefault();
        const k = keyInput.value.trim();
        if (!k) return;
        apiKey.set(k);
        keyInput.value = '';
        keyPrompt.hidden = true;
        main.hidden = false;
        forgetKey.hidden = false;
        keyForm.onsubmit = null;
        resolve();
      };
    }),
);

forgetKey.hidden = !apiKey.get();
forgetKey.addEventListener('click', () => {
  apiKey.clear();
  forgetKey.hidden = true;
  current.id = null;
  show(route(location.hash));
});

fetch('/health', { cache: 'no-store' })
  .then((r) => r.json())
  .then((b) => (document.getElementById('server').textContent = `server ${String(b.version ?? '')}${b.status === 'draining' ? ' (draining)' : ''}`))
  .catch(() => {});

show(route(location.hash));
