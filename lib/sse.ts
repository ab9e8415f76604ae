// Server-Sent Events writer over a ReadableStream (docs/api.md#event-stream): numbered events, one-line JSON data,
// a `: ping` comment after 15 s of silence, and nothing after the terminal event.

export const HEARTBEAT_MS = 15_000;
/**
 * Bytes queued for a reader that is not reading (a client that stopped reading its socket) before it is
 * dropped. The producer (model, sandbox) never waits for a reader, so without this bound a stalled client
 * would hold every later event in memory.
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const enc = new TextEncoder();

/** The error a dropped reader sees; the HTTP adapter logs it and closes the connection. */
export class SlowReaderError extends Error {
  constructor(readonly bufferedBytes: number) {
    super(`the reader fell more than ${MAX_BUFFERED_BYTES} bytes behind and was dropped`);
    this.name = 'SlowReaderError';
  }
}

export interface StreamEvent {
  type: string;
  [field: string]: unknown;
}

export class EventStream {
  readonly body: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private nextId = 1;
  private closed = false;
  private pending = '';
  private heartbeat: NodeJS.Timeout;

  /**
   * `onCancel` runs when the reader goes away: a client disconnect, or a reader dropped for falling more
   * than MAX_BUFFERED_BYTES behind (the same thing to the producer).
   */
  constructor(private readonly onCancel: () => void, heartbeatMs = HEARTBEAT_MS) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        cancel: () => {
          this.stop();
          onCancel();
        },
      },
      // The HTTP adapter reads with socket back-pressure, so what the client does not take queues here;
      // desiredSize < 0 means more than MAX_BUFFERED_BYTES are waiting (see flush).
      { highWaterMark: MAX_BUFFERED_BYTES, size: (chunk) => chunk.byteLength },
    );
    this.heartbeat = setInterval(() => this.ping(), heartbeatMs);
    this.heartbeat.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes one event; returns false once the stream is closed. */
  send(event: StreamEvent): boolean {
    if (this.closed) return false;
    this.heartbeat.refresh();
    const id = this.nextId++;
    this.write(`id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    return true;
  }

  /**
   * Events written in one tick go out as one chunk (flushed on the next tick, before any I/O), so a burst of
   * small events, e.g. the many deltas of one model-stream read, costs one encode, one enqueue, one socket
   * write and one HTTP chunk instead of one each (BENCHMARKS.md, SSE throughput).
   */
  private write(text: string): void {
    if (this.pending === '') process.nextTick(this.flush);
    this.pending += text;
  }

  private readonly flush = (): void => {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    try {
      this.controller.enqueue(enc.encode(text));
    } catch {
      return; /* cancelled by the reader meanwhile */
    }
    const desired = this.controller.desiredSize;
    if (desired !== null && desired < 0 && !this.closed) this.dropReader(MAX_BUFFERED_BYTES - desired);
  };

  /** Drops the queue and the reader: the producer carries on as if the client had disconnected. */
  private dropReader(bufferedBytes: number): void {
    this.stop();
    this.controller.error(new SlowReaderError(bufferedBytes));
    this.onCancel();
  }

  /** Sends the terminal event and closes the stream. */
  end(event: StreamEvent): void {
    if (this.send(event)) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.stop(); // first: the last flush is finite, so it never drops a reader that is merely slow
    this.flush();
    try {
      this.controller.close();
    } catch {
      /* already cancelled by the reader */
    }
  }

  private ping(): void {
    if (!this.closed) this.write(': ping\n\n');
  }

  private stop(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
  }
}
