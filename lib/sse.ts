// Server-Sent Events (docs/api.md#event-stream): how one event is framed, and the writer that carries a
// run's frames to one reader.
//
// A frame is `id: <n>`, `event: <type>`, `data: <one-line JSON with the same type>`, blank line; a `: ping`
// comment goes out after 15 s of silence. Frames are made once per event by the run's log (lib/event-log.ts);
// each reader gets its own EventStream: the log's stored frames first (replay, read page by page as the
// reader takes them), then the live ones, then the stream closes after the terminal event.

export const HEARTBEAT_MS = 15_000;
/**
 * Bytes queued for a reader that is not reading (a client that stopped reading its socket) before it is
 * dropped. The run never waits for a reader, so without this bound a stalled client would hold every later
 * event in memory. A dropped reader may reattach with the last id it saw.
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** While replaying, stored pages are read only while less than this is queued for the reader. */
const REPLAY_QUEUE_BYTES = 512 * 1024;
const enc = new TextEncoder();
const PING = enc.encode(': ping\n\n');

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

const EVENT_NAME = /^[a-z_]+$/;

/**
 * One event as sent on the wire. JSON.stringify escapes every CR and LF, so the data is one line.
 *
 * @example Usage
 * ```ts
 * frameEvent(1, { type: 'assistant', subtype: 'delta', content: 'hi' });
 * // 'id: 1\nevent: assistant\ndata: {"type":"assistant","subtype":"delta","content":"hi"}\n\n'
 * ```
 */
export function frameEvent(id: number, event: StreamEvent): string {
  if (!EVENT_NAME.test(event.type)) throw new TypeError(`event type ${JSON.stringify(event.type)} is not a lowercase name`);
  return `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Where live frames go once a reader has caught up. */
export interface LiveSink {
  push(chunk: Uint8Array): void;
  /** After the terminal event (or at once when the run is not in flight): no more frames. */
  end(): void;
}

/** A reader's view of one run's log (lib/event-log.ts Subscription). */
export interface EventSource {
  /**
   * The next chunk of frames to replay; or, once the reader has caught up, undefined after registering `sink`
   * for the live frames (in the same synchronous step, so nothing falls between the two).
   */
  next(sink: LiveSink): Uint8Array | undefined;
  /** The reader went away: stop sending it anything. */
  cancel(): void;
}

export type GoneReason = 'disconnect' | 'slow';

/** One reader's SSE body: replay, then live frames, pings in between, bounded queue. */
export class EventStream {
  readonly body: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private live = false;
  private closed = false;
  private heartbeat: NodeJS.Timeout;
  private readonly sink: LiveSink = {
    push: (chunk) => this.write(chunk),
    end: () => this.close(),
  };

  /** `onGone` runs once when the reader goes away (client disconnect) or is dropped for not reading. */
  constructor(
    private readonly source: EventSource,
    private readonly onGone: (reason: GoneReason) => void = () => {},
    heartbeatMs = HEARTBEAT_MS,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        pull: () => this.replay(),
        cancel: () => this.gone('disconnect'),
      },
      // The HTTP adapter reads with socket back-pressure, so what the client does not take queues here.
      { highWaterMark: MAX_BUFFERED_BYTES, size: (chunk) => chunk.byteLength },
    );
    this.heartbeat = setInterval(() => this.write(PING), heartbeatMs);
    this.heartbeat.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private get queued(): number {
    return MAX_BUFFERED_BYTES - (this.controller.desiredSize ?? 0);
  }

  /** Reads stored pages while little is queued; the stream calls this again as the reader takes them. */
  private replay(): void {
    while (!this.live && !this.closed && this.queued < REPLAY_QUEUE_BYTES) {
      let page: Uint8Array | undefined;
      try {
        page = this.source.next(this.sink);
      } catch (err) {
        // The database went away under a replay (shutdown): the reader sees a cut stream and may reattach.
        this.fail(err);
        return;
      }
      if (page === undefined) this.live = true;
      else this.enqueue(page);
    }
  }

  private enqueue(chunk: Uint8Array): boolean {
    try {
      this.controller.enqueue(chunk);
    } catch {
      return false; // cancelled by the reader meanwhile
    }
    this.heartbeat.refresh();
    return true;
  }

  /** A live chunk. One chunk larger than the bound still goes to a reader that had nothing queued. */
  private write(chunk: Uint8Array): void {
    if (this.closed) return;
    const before = this.queued;
    if (!this.enqueue(chunk)) return;
    if (before > 0 && this.queued > MAX_BUFFERED_BYTES) {
      const queued = this.queued;
      this.fail(new SlowReaderError(queued));
      this.onGone('slow');
    }
  }

  /** Closes after what is queued has been read. */
  close(): void {
    if (this.closed) return;
    this.stop();
    try {
      this.controller.close();
    } catch {
      /* already cancelled by the reader */
    }
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.stop();
    this.source.cancel();
    try {
      this.controller.error(err);
    } catch {
      /* already closed */
    }
  }

  private gone(reason: GoneReason): void {
    if (this.closed) return;
    this.stop();
    this.source.cancel();
    this.onGone(reason);
  }

  private stop(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
  }
}
