// Files a run returned: download links and previews. Bytes are fetched with the key (or taken from the
// `file` event) and handed to the browser as blob: URLs. Only raster image types are shown as images (an SVG
// can carry script); text is shown as text; everything is downloaded as application/octet-stream.
import { api, filePath } from './api.js';
import { fmt, h } from './dom.js';

const IMAGE_TYPES = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp', avif: 'image/avif', ico: 'image/x-icon' };
const TEXT_PREVIEW_CHARS = 64 * 1024;

const basename = (path) => path.slice(path.lastIndexOf('/') + 1) || 'file';
const imageType = (path) => IMAGE_TYPES[path.slice(path.lastIndexOf('.') + 1).toLowerCase()];

export function base64Bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Hands bytes to the browser as a download named after the file. */
export function saveBytes(bytes, path) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = h('a', { href: url, download: basename(path), hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Blob URLs made for previews, revoked when the page they belong to goes away. */
export class BlobUrls {
  urls = [];
  make(bytes, type) {
    const url = URL.createObjectURL(new Blob([bytes], { type }));
    this.urls.push(url);
    return url;
  }
  dispose() {
    for (const u of this.urls) URL.revokeObjectURL(u);
    this.urls = [];
  }
}

function textPreview(text) {
  const shown = text.length > TEXT_PREVIEW_CHARS ? text.slice(0, TEXT_PREVIEW_CHARS) : text;
  return h('div', { class: 'preview' }, h('pre', { class: 'file-text' }, shown), text.length > shown.length ? h('p', { class: 'muted' }, `… ${fmt.int(text.length - shown.length)} more characters; download the file for all of it`) : null);
}

function imagePreview(bytes, path, blobs) {
  const type = imageType(path);
  return h('div', { class: 'preview' }, h('img', { src: blobs.make(bytes, type), alt: `preview of ${basename(path)}`, class: 'file-image' }));
}

/** The preview of a file whose bytes we have, or null when it is neither text nor a raster image. */
function preview(path, bytes, text, blobs) {
  if (imageType(path) && bytes) return imagePreview(bytes, path, blobs);
  if (text !== undefined) return textPreview(text);
  return null;
}

/** A `file` event of the transcript: its content is in the event. */
export function fileEventCard(e, blobs) {
  const bytes = e.encoding === 'base64' ? base64Bytes(e.content ?? '') : null;
  const text = e.encoding === 'base64' ? undefined : String(e.content ?? '');
  const download = h('button', { type: 'button', class: 'small', title: `download ${e.path}` }, 'Download');
  download.addEventListener('click', () => saveBytes(bytes ?? new TextEncoder().encode(text), e.path));
  return h(
    'div',
    { class: 'file-card', 'data-kind': 'file' },
    h('div', { class: 'file-head' }, h('span', { class: 'tag' }, 'file'), h('span', { class: 'file-name' }, e.path), h('span', { class: 'muted' }, fmt.bytes(e.size)), download),
    preview(e.path, bytes, text, blobs),
  );
}

/** The run record's `files`: each downloaded from the API; text and images previewed on demand. */
export function filesSection(run, blobs) {
  const files = Array.isArray(run.files) ? run.files : [];
  if (files.length === 0) return null;
  const rows = files.map((f) => {
    const slot = h('div', { class: 'preview-slot' });
    const fetchBytes = async () => new Uint8Array(await (await api(filePath(run.id, f.path))).arrayBuffer());
    const status = h('span', { class: 'error', hidden: true });
    const failed = (err) => {
      status.hidden = false;
      status.textContent = `${err.code ?? 'ERROR'}: ${err.message}`;
    };
    const download = h('button', { type: 'button', class: 'small', title: `download ${f.path}` }, 'Download');
    download.addEventListener('click', () => fetchBytes().then((b) => saveBytes(b, f.path), failed));
    const show = h('button', { type: 'button', class: 'small' }, 'Preview');
    show.addEventListener('click', async () => {
      show.disabled = true;
      try {
        const res = await api(filePath(run.id, f.path));
        const type = (res.headers.get('content-type') ?? '').toLowerCase();
        const bytes = new Uint8Array(await res.arrayBuffer());
        const isText = /^text\/|^application\/(json|xml|x-yaml|yaml|javascript)|\+json|\+xml/.test(type) && !type.startsWith('image/');
        const decoded = isText ? new TextDecoder('utf-8', { fatal: false }).decode(bytes) : undefined;
        slot.replaceChildren(preview(f.path, imageType(f.path) ? bytes : null, decoded, blobs) ?? h('p', { class: 'muted' }, `no preview for ${type || 'this type'}; download it`));
      } catch (err) {
        failed(err);
      }
    });
    const canPreview = Boolean(imageType(f.path)) || !/\.(bin|zip|gz|tgz|tar|pdf|exe|so|o|class|jar|whl|sqlite|db)$/i.test(f.path);
    return h(
      'li',
      { class: 'file-row', 'data-kind': 'stored-file' },
      h('span', { class: 'file-name' }, f.path),
      h('span', { class: 'muted' }, fmt.bytes(f.size)),
      h('code', { class: 'muted', title: `sha256 ${f.sha256}` }, String(f.sha256 ?? '').slice(0, 12)),
      download,
      canPreview ? show : null,
      status,
      slot,
    );
  });
  return h('section', { class: 'panel files' }, h('h3', {}, `Files (${files.length})`), h('ul', { class: 'file-list' }, rows));
}
