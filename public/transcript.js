// A run's transcript, built event by event (the same code for stored events and live ones): assistant text,
// thinking (folded), each tool call with its input and its result, files, warnings, the end.
import { fmt, h } from './dom.js';
import { fileEventCard } from './files.js';

const OUTPUT_FOLD_LINES = 40;

/** The one line that says what a tool call does, from its input. */
function toolSummary(name, input) {
  if (!input || typeof input !== 'object') return '';
  const pick = input.command ?? input.path ?? input.name ?? (Array.isArray(input.paths) ? input.paths.join(' ') : undefined);
  return pick === undefined ? '' : fmt.excerpt(pick, 160);
}

function pretty(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export class Transcript {
  /** @param {import('./files.js').BlobUrls} blobs */
  constructor(blobs) {
    this.blobs = blobs;
    this.el = h('div', { class: 'transcript', 'aria-live': 'polite' });
    this.tools = new Map();
    this.open = null; // the text block deltas go to: {kind, node}
    this.count = 0;
  }

  add(e) {
    this.count++;
    if (e.type === 'assistant' || e.type === 'thinking') return this.delta(e.type, String(e.content ?? ''));
    this.open = null;
    const el = this.block(e);
    if (el) this.el.append(el);
  }

  delta(kind, text) {
    if (this.open?.kind !== kind) {
      const node = document.createTextNode('');
      const block =
        kind === 'assistant'
          ? h('div', { class: 'msg assistant', 'data-kind': 'assistant' }, node)
          : h('details', { class: 'msg thinking', 'data-kind': 'thinking' }, h('summary', {}, 'Thinking'), h('div', { class: 'thinking-text' }, node));
      this.el.append(block);
      this.open = { kind, node };
    }
    this.open.node.appendData(text);
  }

  block(e) {
    switch (e.type) {
      case 'system':
        return this.system(e);
      case 'tool_use':
        return this.toolUse(e);
      case 'tool_result':
        return this.toolResult(e);
      case 'file':
        return fileEventCard(e, this.blobs);
      case 'warning':
        return h('div', { class: 'note warning', 'data-kind': 'warning' }, h('strong', {}, `warning ${e.code ?? ''}`), ' ', String(e.content ?? ''));
      case 'result':
        return this.result(e);
      case 'error':
        return errorBox(e);
      default:
        return h('div', { class: 'note muted', 'data-kind': 'other' }, `${String(e.type)}: ${fmt.excerpt(pretty(e), 300)}`);
    }
  }

  system(e) {
    let text = String(e.content ?? e.subtype ?? '');
    if (e.subtype === 'run_started') text = `Run started · ${e.model} · ${e.provider} · ${e.sandboxProvider} sandbox`;
    else if (e.subtype === 'sandbox_created') text = `Sandbox ${e.sandbox} created (${e.sandboxId})`;
    else if (e.subtype === 'sandbox_destroyed') text = `Sandbox ${e.sandbox} destroyed`;
    return h('div', { class: 'note system', 'data-kind': 'system' }, text);
  }

  toolUse(e) {
    const status = h('span', { class: 'tool-status pending' }, 'running…');
    const output = h('div', { class: 'tool-output' });
    const where = e.sandbox && e.sandbox !== 'main' ? h('span', { class: 'tag' }, `in ${e.sandbox}`) : null;
    const card = h(
      'div',
      { class: 'tool', 'data-kind': 'tool' },
      h('div', { class: 'tool-head' }, h('span', { class: 'tool-name' }, String(e.toolName)), where, h('code', { class: 'tool-summary' }, toolSummary(e.toolName, e.input)), status),
      h('details', { class: 'tool-input' }, h('summary', {}, 'input'), h('pre', {}, pretty(e.input))),
      output,
    );
    this.tools.set(`${e.sandbox ?? ''}\u0000${e.id}`, { status, output });
    return card;
  }

  toolResult(e) {
    const slot = this.tools.get(`${e.sandbox ?? ''}\u0000${e.id}`);
    const content = String(e.content ?? '');
    const lines = content.split('\n').length;
    const pre = h('pre', { class: e.isError ? 'out is-error' : 'out' }, content);
    const body = lines > OUTPUT_FOLD_LINES ? h('details', { class: 'long-output' }, h('summary', {}, `output (${fmt.int(lines)} lines)`), pre) : pre;
    const label = e.isError ? 'error' : 'ok';
    const exit = typeof e.exitCode === 'number' ? `exit ${e.exitCode}` : label;
    if (!slot) return h('div', { class: 'tool orphan', 'data-kind': 'tool' }, h('div', { class: 'tool-head' }, h('span', { class: 'tool-name' }, String(e.toolName)), h('span', { class: `tool-status ${label}` }, exit)), body);
    slot.status.textContent = exit;
    slot.status.className = `tool-status ${e.isError || (typeof e.exitCode === 'number' && e.exitCode !== 0) ? 'error' : 'ok'}`;
    slot.output.replaceChildren(body);
    return null;
  }

  result(e) {
    const stats = [
      `${e.subtype === 'max_turns' ? 'stopped at max turns' : 'done'}`,
      `${fmt.int(e.numTurns)} turns`,
      `${fmt.int(e.inputTokens)} in / ${fmt.int(e.outputTokens)} out tokens`,
      fmt.cost(e.costUsd),
      fmt.duration(e.durationSecs),
    ].join(' · ');
    return h(
      'div',
      { class: 'note result', 'data-kind': 'result' },
      h('div', { class: 'result-head' }, h('strong', {}, 'Result'), ' ', h('span', { class: 'muted' }, stats)),
      e.structuredOutput !== undefined ? h('pre', { class: 'structured' }, pretty(e.structuredOutput)) : h('div', { class: 'result-text' }, String(e.content ?? '')),
    );
  }
}

/** A terminal error, or any API error shown in its place: code, message, hint. */
export function errorBox(e) {
  return h(
    'div',
    { class: 'note error-box', 'data-kind': 'error' },
    h('strong', {}, String(e.code ?? 'ERROR')),
    ' ',
    String(e.content ?? e.message ?? ''),
    e.hint ? h('div', { class: 'hint' }, `Hint: ${e.hint}`) : null,
  );
}
