// Minimal tar support for the Docker archive API (PUT/GET /containers/{id}/archive): a writer for the few
// entries we upload and a streaming reader, so listing or reading never buffers a whole archive.
// Names longer than ustar allows go in a PAX header; the reader understands ustar, PAX and GNU long names.

const BLOCK = 512;

export interface TarWriteEntry {
  /** Path inside the archive, '/'-separated, relative (a directory name may end with '/'). */
  name: string;
  type: 'file' | 'dir';
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch; defaults to now. */
  mtime?: number;
  /** File contents (files only). */
  data?: Uint8Array;
}

function octal(buf: Buffer, value: number, offset: number, length: number): void {
  buf.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function header(name: string, typeflag: string, size: number, e: Omit<TarWriteEntry, 'name' | 'type'>): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  octal(h, e.mode & 0o7777, 100, 8);
  octal(h, e.uid, 108, 8);
  octal(h, e.gid, 116, 8);
  octal(h, size, 124, 12);
  octal(h, Math.floor(e.mtime ?? Date.now() / 1000), 136, 12);
  h.write(typeflag, 156, 1, 'ascii');
  h.write('ustar\0' + '00', 257, 8, 'ascii');
  h.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** PAX record "<len> key=value\n", where <len> counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const body = Buffer.byteLength(` ${key}=${value}\n`);
  let len = body + 1;
  while (len !== body + String(len).length) len = body + String(len).length;
  return `${len} ${key}=${value}\n`;
}

/** The archive as a list of chunks (file data is not copied), ready for Readable.from() or Buffer.concat(). */
export function packTar(entries: TarWriteEntry[]): Buffer[] {
  const out: Buffer[] = [];
  for (const e of entries) {
    const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
    const d = e.type === 'file' ? e.data : undefined;
    const data = d ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.alloc(0);
    // What the ustar fields cannot hold goes in a PAX header first: long names, sizes of 8 GiB and more.
    let records = Buffer.byteLength(name) > 100 ? paxRecord('path', name) : '';
    if (data.length > 0o77777777777) records += paxRecord('size', String(data.length));
    if (records) {
      const pax = Buffer.from(records);
      out.push(header('PaxHeader', 'x', pax.length, e), pax, padding(pax.length));
    }
    out.push(header(name, e.type === 'dir' ? '5' : '0', Math.min(data.length, 0o77777777777), e));
    if (data.length) out.push(data, padding(data.length));
  }
  out.push(Buffer.alloc(BLOCK * 2));
  return out;
}

export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  size: number;
  mode: number;
  mtimeMs: number;
  linkname: string;
}

function str(buf: Buffer, offset: number, length: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end === -1 || end > offset + length ? offset + length : end);
}

function num(buf: Buffer, offset: number, length: number): number {
  if (buf[offset]! & 0x80) {
    // GNU base-256 for values that do not fit in octal (files over 8 GiB).
    let v = buf[offset]! & 0x7f;
    for (let i = offset + 1; i < offset + length; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = str(buf, offset, length).trim();
  return s ? parseInt(s, 8) : 0;
}

/** PAX records are length-prefixed ("<len> key=value\n"), so values may hold any byte, newlines included. */
function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let off = 0; off < buf.length; ) {
    const space = buf.indexOf(32, off);
    const len = space < 0 ? 0 : parseInt(buf.toString('ascii', off, space), 10);
    if (!len) break;
    const record = buf.toString('utf8', space + 1, off + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    off += len;
  }
  return out;
}

const TYPES: Record<string, TarEntry['type']> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

export interface TarHandlers {
  /** Return false to skip the entry's data (it is then discarded without being kept). */
  entry(e: TarEntry): boolean | void;
  data?(chunk: Buffer): void;
}

/**
 * Push parser: feed chunks as they arrive; entry data is handed over (or dropped) as it streams,
 * so memory stays at one block plus the current chunk whatever the archive size.
 */
export class TarReader {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private remaining = 0; // data bytes of the current entry still to come
  private skipPad = 0; // padding after them
  private wantData = false;
  private meta: { kind: 'pax' | 'global' | 'longname' | 'longlink'; chunks: Buffer[] } | null = null;
  private pax: Record<string, string> = {};
  private global: Record<string, string> = {};
  private longName: string | null = null;
  private longLink: string | null = null;
  ended = false;

  constructor(private readonly h: TarHandlers) {}

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        const part = chunk.subarray(off, off + n);
        if (this.meta) this.meta.chunks.push(Buffer.from(part));
        else if (this.wantData) this.h.data?.(part);
        this.remaining -= n;
        off += n;
        if (this.remaining === 0 && this.meta) this.finishMeta();
        continue;
      }
      if (this.skipPad > 0) {
        const n = Math.min(this.skipPad, chunk.length - off);
        this.skipPad -= n;
        off += n;
        continue;
      }
      const n = Math.min(BLOCK - this.pendingLen, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingLen += n;
      off += n;
      if (this.pendingLen === BLOCK) {
        const block = Buffer.concat(this.pending);
        this.pending = [];
        this.pendingLen = 0;
        this.header(block);
      }
    }
  }

  private header(b: Buffer): void {
    if (b.every((x) => x === 0)) {
      this.ended = true; // end-of-archive marker; anything after it is padding
      return;
    }
    const flag = String.fromCharCode(b[156]!);
    const pax = { ...this.global, ...this.pax };
    // A PAX size (files over 8 GiB) replaces the header's; it does not apply to the meta entries themselves.
    const meta = flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K';
    const size = !meta && pax.size !== undefined ? Number(pax.size) : num(b, 124, 12);
    this.remaining = size;
    this.skipPad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (meta) {
      const kinds = { x: 'pax', g: 'global', L: 'longname', K: 'longlink' } as const;
      this.meta = { kind: kinds[flag as keyof typeof kinds], chunks: [] };
      if (size === 0) this.finishMeta();
      return;
    }
    // POSIX ustar ("ustar\0") keeps a name prefix at 345; GNU ("ustar ") keeps other fields there.
    const prefix = b.toString('latin1', 257, 263) === 'ustar\0' ? str(b, 345, 155) : '';
    const name = pax.path ?? this.longName ?? (prefix ? `${prefix}/${str(b, 0, 100)}` : str(b, 0, 100));
    const type = TYPES[flag] ?? 'other';
    const mtime = pax.mtime !== undefined ? Number(pax.mtime) : num(b, 136, 12);
    const entry: TarEntry = {
      name,
      type: type === 'file' && name.endsWith('/') ? 'dir' : type,
      size: type === 'file' ? size : 0,
      mode: num(b, 100, 8),
      mtimeMs: Math.round(mtime * 1000),
      linkname: pax.linkpath ?? this.longLink ?? str(b, 157, 100),
    };
    this.pax = {};
    this.longName = this.longLink = null;
    this.wantData = this.h.entry(entry) !== false;
  }

  private finishMeta(): void {
    const m = this.meta!;
    this.meta = null;
    const body = Buffer.concat(m.chunks);
    if (m.kind === 'pax') Object.assign(this.pax, parsePax(body));
    else if (m.kind === 'global') Object.assign(this.global, parsePax(body)); // applies to every later entry
    else if (m.kind === 'longname') this.longName = body.toString('utf8').replace(/\0+$/, '');
    else this.longLink = body.toString('utf8').replace(/\0+$/, '');
  }
}
