// One run: its record, its transcript from the stored events, then live while it runs (reattaching after a
// dropped connection), a cancel button, and the files it returned.
import { api, ApiError, getJson } from './api.js';
import { fmt, h } from './dom.js';
import { BlobUrls, filesSection } from './files.js';
import { followRun } from './sse.js';
import { errorBox, Transcript } from './transcript.js';

const STATE_TEXT = { live: 'following live', reconnecting: 'connection lost; reconnecting…', ended: '' };

/** `first`: a POST /query response whose stream this page takes over (the "new run" form). */
export function runView(main, runId, signal, { first } = {}) {
  const blobs = new BlobUrls();
  signal.addEventListener('abort', () => blobs.dispose(), { once: true });
  const transcript = new Transcript(blobs);

  const badge = h('span', { class: 'badge', id: 'run-status' }, '…');
  const facts = h('dl', { class: 'facts', id: 'run-facts' });
  const conn = h('span', { class: 'muted', id: 'conn-state' });
  const cancel = h('button', { type: 'button', id: 'cancel-run', class: 'danger', hidden: true }, 'Cancel run');
  const cancelNote = h('span', { class: 'muted', id: 'cancel-note' });
  const prompt = h('details', { class: 'prompt', id: 'run-prompt' }, h('summary', {}, 'Prompt'), h('div', { class: 'prompt-text' }));
  const notes = h('div', { id: 'run-notes' });
  const filesSlot = h('div', { id: 'run-files' });
  main.replaceChildren(
    h(
      'section',
      { class: 'run' },
      h('div', { class: 'toolbar' }, h('a', { href: '#/', class: 'back' }, '← Runs'), h('h2', { class: 'run-id' }, runId), badge, h('span', { class: 'spacer' }), conn, cancelNote, cancel),
      facts,
      prompt,
      notes,
      h('section', { class: 'panel' }, h('h3', {}, 'Transcript'), transcript.el),
      filesSlot,
    ),
  );

  let shownPromptFor = null;
  function showRecord(run) {
    badge.textContent = run.status;
    badge.className = `badge ${run.status}`;
    const rows = [
      ['Model', run.model],
      ['Provider', run.provider],
      ['Sandbox', run.sandboxProvider],
      ['Cost', fmt.cost(run.costUsd)],
      ['Tokens', fmt.tokens(run)],
      ['Turns', fmt.int(run.numTurns)],
      ['Duration', run.status === 'running' ? 'running' : fmt.duration(run.durationSecs)],
      ['Started', fmt.when(run.startedAt)],
    ];
    if (run.errorCode) rows.push(['Error', `${run.errorCode}${run.error ? `: ${run.error}` : ''}`]);
    facts.replaceChildren(...rows.map(([k, v]) => h('div', { class: 'fact' }, h('dt', {}, k), h('dd', {}, v ?? '—'))));
    cancel.hidden = run.status !== 'running';
    if (shownPromptFor !== run.id) {
      shownPromptFor = run.id;
      prompt.querySelector('.prompt-text').textContent = String(run.prompt ?? '');
      prompt.open = String(run.prompt ?? '').length < 400;
    }
    filesSlot.replaceChildren(filesSection(run, blobs) ?? '');
  }

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    cancelNote.textContent = 'cancelling…';
    try {
      await api(`/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST' });
    } catch (err) {
      cancelNote.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
      cancel.disabled = false;
    }
  });

  const refreshRecord = async () => {
    const run = await getJson(`/runs/${encodeURIComponent(runId)}`, { signal });
    if (!signal.aborted) showRecord(run);
    return run;
  };

  (async () => {
    let run;
    try {
      run = await refreshRecord();
    } catch (err) {
      if (!signal.aborted) notes.replaceChildren(errorBox(err));
      await first?.body?.cancel();
      return;
    }
    if (run.eventsExpired) {
      notes.replaceChildren(h('div', { class: 'note warning' }, 'The events of this run were removed by retention; its record is below.'));
      if (run.result) transcript.el.append(h('div', { class: 'note result' }, h('strong', {}, 'Result'), h('div', { class: 'result-text' }, run.result)));
      return;
    }
    try {
      await followRun(runId, {
        first,
        signal,
        onEvent: (e) => transcript.add(e),
        onState: (s) => (conn.textContent = STATE_TEXT[s] ?? ''),
      });
    } catch (err) {
      if (!signal.aborted) notes.replaceChildren(errorBox(err));
    }
    if (signal.aborted) return;
    cancelNote.textContent = '';
    if (transcript.count === 0) transcript.el.append(h('p', { class: 'muted' }, 'No events.'));
    await refreshRecord().catch(() => {});
  })();
}
