// The runs list: newest first, filtered by status, paged with the `before` cursor (the last run shown);
// the first page refreshes itself while runs are in flight.
import { getJson } from './api.js';
import { fmt, h, runHref, sleep } from './dom.js';
import { errorBox } from './transcript.js';

export const PAGE_SIZE = 50;
const STATUSES = ['running', 'completed', 'error', 'cancelled'];
const REFRESH_MS = 3000;

/** Cursors of the pages before this one, so "Newer" goes back the way "Older" came. */
const newerStack = [];

const listHash = (q) => {
  const s = new URLSearchParams(Object.entries(q).filter(([, v]) => v)).toString();
  return s ? `#/?${s}` : '#/';
};

export function listView(main, params, signal) {
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : '';
  const before = params.get('before') ?? '';
  if (!before) newerStack.length = 0;

  const filter = h('select', { id: 'status-filter', 'aria-label': 'status filter' }, h('option', { value: '' }, 'all statuses'), STATUSES.map((s) => h('option', { value: s }, s)));
  filter.value = status;
  filter.addEventListener('change', () => (location.hash = listHash({ status: filter.value })));
  const refresh = h('button', { type: 'button', class: 'small', id: 'refresh' }, 'Refresh');
  const body = h('tbody');
  const info = h('p', { class: 'muted', id: 'list-info' }, 'Loading…');
  const newer = h('button', { type: 'button', id: 'page-newer', disabled: !before }, '← Newer');
  const older = h('button', { type: 'button', id: 'page-older', disabled: true }, 'Older →');
  const table = h(
    'table',
    { class: 'runs', id: 'runs-table' },
    h('thead', {}, h('tr', {}, ['Status', 'Run', 'Prompt', 'Model', 'Provider', 'Cost', 'Tokens', 'Turns', 'Duration', 'Started'].map((c) => h('th', {}, c)))),
    body,
  );
  main.replaceChildren(
    h('section', { class: 'list' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Runs'), filter, refresh, h('span', { class: 'spacer' }), h('a', { href: '#/new', class: 'button' }, 'New run')), table, info, h('div', { class: 'pager' }, newer, older)),
  );

  let lastId = null;
  newer.addEventListener('click', () => (location.hash = listHash({ status, before: newerStack.pop() ?? '' })));
  older.addEventListener('click', () => {
    newerStack.push(before);
    location.hash = listHash({ status, before: lastId });
  });

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE + 1) });
    if (status) q.set('status', status);
    if (before) q.set('before', before);
    const runs = await getJson(`/runs?${q}`, { signal });
    const shown = runs.slice(0, PAGE_SIZE);
    body.replaceChildren(...shown.map(row));
    lastId = shown.at(-1)?.id ?? null;
    older.disabled = runs.length <= PAGE_SIZE;
    info.textContent = shown.length === 0 ? (before ? 'No older runs.' : 'No runs yet. Start one with "New run".') : `${shown.length} run${shown.length === 1 ? '' : 's'} shown${before ? ' (older page)' : ''}.`;
    return shown.some((r) => r.status === 'running');
  }

  refresh.addEventListener('click', () => load().catch(showError));
  const showError = (err) => {
    if (signal.aborted) return;
    info.replaceChildren(errorBox(err));
  };

  (async () => {
    try {
      // The first page follows runs in flight; older pages hold finished runs.
      while ((await load()) && !before && !signal.aborted) await sleep(REFRESH_MS, signal);
    } catch (err) {
      showError(err);
    }
  })();
}

function row(r) {
  return h(
    'tr',
    { 'data-id': r.id, 'data-status': r.status },
    h('td', {}, h('span', { class: `badge ${r.status}` }, r.status), r.errorCode ? h('span', { class: 'muted small-text' }, ` ${r.errorCode}`) : null),
    h('td', { class: 'run-cell', title: r.id }, h('a', { href: runHref(r.id), class: 'run-link' }, r.id)),
    h('td', { class: 'prompt-cell', title: fmt.excerpt(r.prompt, 500) }, fmt.excerpt(r.prompt, 80)),
    h('td', {}, String(r.model ?? '')),
    h('td', {}, String(r.provider ?? '')),
    h('td', { class: 'num' }, fmt.cost(r.costUsd)),
    h('td', { class: 'num' }, fmt.tokens(r)),
    h('td', { class: 'num' }, fmt.int(r.numTurns)),
    h('td', { class: 'num' }, r.status === 'running' ? '…' : fmt.duration(r.durationSecs)),
    h('td', {}, fmt.when(r.startedAt)),
  );
}
