// Server-Sent Events writer over a ReadableStream (docs/api.md#event-stream): numbered events, one-line JSON data,
// a `: ping` comment after 15 s of silence, and nothing after the terminal event.

export const HEARTBEAT_MS = 15_000;
const enc = new TextEncoder();

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

  /** `onCancel` runs when the reader goes away (client disconnect). */
  constructor(onCancel: () => void, heartbeatMs = HEARTBEAT_MS) {
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
      // Generous buffer: events are small and the producer (model, sandbox) is slow; the HTTP adapter
      // applies socket back-pressure when reading from this stream.
      { highWaterMark: 1024 * 1024, size: (chunk) => chunk.byteLength },
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
      /* cancelled by the reader meanwhile */
    }
  };

  /** Sends the terminal event and closes the stream. */
  end(event: StreamEvent): void {
    if (this.send(event)) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.stop();
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
