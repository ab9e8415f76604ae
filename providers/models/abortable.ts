// Abort handling for one streamed model call, shared by every wire API.

/**
 * Runs one streamed call so that an abort rejects at once with the signal's reason, whatever the SDK is
 * doing at that moment (the openai SDK's retry back-off ignores the signal, and both SDKs end a stream
 * quietly rather than throwing when it is aborted). The SDK request gets the same signal, so the HTTP
 * request is cancelled too.
 */
export async function abortable<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const running = work();
  running.catch(() => {}); // its late rejection after an abort is expected, not unhandled
  try {
    return await Promise.race([running, aborted]);
  } catch (err) {
    // The SDK noticed the abort first and threw its own error: report the signal's reason instead.
    if (signal.aborted) throw signal.reason;
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
