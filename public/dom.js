// Building the page. Everything shown comes from the API, which carries what models and sandboxes wrote:
// it only ever becomes text nodes or the values of the few attributes listed here, never markup.

const ATTRS = new Set(['class', 'id', 'title', 'type', 'name', 'placeholder', 'value', 'href', 'download', 'rows', 'for', 'min', 'max', 'accept', 'role', 'hidden', 'disabled', 'checked', 'multiple', 'required', 'src', 'alt', 'open', 'data-status', 'data-kind', 'data-id', 'aria-label', 'aria-live', 'spellcheck', 'autocomplete']);

/**
 * One element. `children`: strings (become text), nodes, or null/false (skipped). `href` and `src` must be
 * ours: a hash route or a blob: URL this page made; anything else is refused.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (!ATTRS.has(k)) throw new Error(`attribute ${k} is not allowed`);
    if ((k === 'href' || k === 'src') && !/^(#|blob:)/.test(String(v))) throw new Error(`${k} must be a hash route or a blob: URL`);
    el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export const fmt = {
  cost(usd) {
    if (usd === null || usd === undefined) return '—';
    return usd < 0.01 && usd > 0 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
  },
  int(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : '—';
  },
  tokens(run) {
    if (!run) return '—';
    return `${fmt.int(run.inputTokens)} in / ${fmt.int(run.outputTokens)} out`;
  },
  duration(secs) {
    if (typeof secs !== 'number') return '—';
    if (secs < 60) return `${secs.toFixed(1)} s`;
    const m = Math.floor(secs / 60);
    return m < 60 ? `${m} min ${Math.round(secs % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  },
  bytes(n) {
    if (typeof n !== 'number') return '—';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  },
  /** "3 min ago" with the ISO time as a title. */
  when(iso) {
    if (!iso) return h('span', {}, '—');
    const t = Date.parse(iso);
    const ago = Math.max(0, (Date.now() - t) / 1000);
    const text = ago < 60 ? `${Math.round(ago)} s ago` : ago < 3600 ? `${Math.round(ago / 60)} min ago` : ago < 86400 ? `${Math.round(ago / 3600)} h ago` : new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    return h('time', { title: iso }, text);
  },
  /** A one-line, bounded excerpt. */
  excerpt(text, max = 120) {
    const one = String(text ?? '').replace(/\s+/g, ' ').trim();
    return one.length > max ? one.slice(0, max - 1) + '…' : one;
  },
};

/** A route to a run page; the id is encoded, so it can only ever be a hash. */
export const runHref = (id) => `#/runs/${encodeURIComponent(id)}`;

export const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
