// Raw HTTP/1.1 over net sockets, for requests no HTTP client would send (malformed, slow, huge, never read),
// and /proc readings of a server child's memory.
import { readFileSync } from 'node:fs';
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Lowercased names. */
  headers: Record<string, string>;
  /** The body, de-chunked. */
  body: string;
  /** Everything received, as latin1. */
  raw: string;
  /** The server closed the connection (rather than us, after `waitMs`). */
  closedByServer: boolean;
  /** Milliseconds from connecting to the close (or to giving up). */
  ms: number;
}

/** Parses the first response in `raw` (latin1); null when there is none. */
export function parseResponse(raw: string): Omit<RawResponse, 'raw' | 'closedByServer' | 'ms'> | null {
  const end = raw.indexOf('\r\n\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  if (!m || end < 0) return null;
  const headers: Record<string, string> = {};
  for (const line of raw.slice(0, end).split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let rest = raw.slice(end + 4);
  let body = '';
  if (headers['transfer-encoding'] === 'chunked') {
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const size = parseInt(rest.slice(0, nl), 16);
      if (!size) break;
      body += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
  } else if (headers['content-length'] !== undefined) {
    body = rest.slice(0, Number(headers['content-length']));
  } else body = rest;
  return { status: Number(m[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

/**
 * Sends `payload` (then each of `more` every `everyMs`) and collects the answer until the server closes the
 * connection or `waitMs` pass.
 */
export function exchange(port: number, payload: string | Buffer, opts: { waitMs?: number; more?: (string | Buffer)[]; everyMs?: number } = {}): Promise<RawResponse> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let closedByServer = true;
    const giveUp = setTimeout(() => {
      closedByServer = false;
      socket.destroy();
    }, opts.waitMs ?? 5000);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {}); // a reset still ends in 'close'
    socket.on('close', () => {
      clearTimeout(giveUp);
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const parsed = parseResponse(raw);
      if (!parsed && raw !== '') return reject(new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 300))}`));
      resolve({ ...(parsed ?? { status: 0, headers: {}, body: '' }), raw, closedByServer, ms: performance.now() - t0 });
    });
    socket.on('connect', () => {
      socket.write(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload);
      const more = [...(opts.more ?? [])];
      const next = () => {
        const piece = more.shift();
        if (piece === undefined || socket.destroyed) return;
        socket.write(typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece);
        timer = setTimeout(next, opts.everyMs ?? 200);
      };
      if (more.length) timer = setTimeout(next, opts.everyMs ?? 200);
    });
  });
}

export interface PushResult {
  /** Bytes the socket accepted before the server stopped it (or `total` was reached). */
  sent: number;
  response: ReturnType<typeof parseResponse>;
  ms: number;
}

/**
 * Sends `head`, then streams body bytes as fast as the server takes them (chunked framing when `chunked`),
 * up to `total`; stops sending once the server starts answering, as curl does with an early final status
 * (a client that kept writing would meet the server's reset on a write and lose the answer it had not read
 * yet), and ends when the server closes (or resets) the connection. `stopOnAnswer: false` is the attacker who
 * never stops writing.
 */
export function pushBody(port: number, head: string, total: number, chunked: boolean, opts: { stopOnAnswer?: boolean } = {}): Promise<PushResult> {
  const stopOnAnswer = opts.stopOnAnswer ?? true;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let sent = 0;
    let done = false;
    const chunk = Buffer.alloc(256 * 1024, 'x');
    const framed = chunked ? Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')]) : chunk;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ sent, response: parseResponse(Buffer.concat(received).toString('latin1')), ms: performance.now() - t0 });
    };
    let answered = false;
    socket.on('data', (d) => {
      answered = stopOnAnswer;
      received.push(d);
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(head);
      const pump = () => {
        while (!done && !answered && sent < total) {
          sent += chunk.length;
          if (!socket.write(framed)) return void socket.once('drain', pump);
        }
        if (!done && !answered && chunked) socket.write('0\r\n\r\n');
      };
      pump();
    });
  });
}

/** Resident and peak resident memory of a process, MiB (Linux /proc). */
export function memoryMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
