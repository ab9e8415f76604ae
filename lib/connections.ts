// The connections of the node:http server, apart from the requests on them (lib/node-http.ts): what a
// client that breaks HTTP itself gets (Node's parser errors, in the API's error shape), and the cap on
// open connections (SANDCASTER_MAX_CONNECTIONS), which closes idle keep-alive sockets first.
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody } from './http.ts';
import { log } from './log.ts';

/**
 * node:http's `clientError` (bytes its parser refused, or headers/bodies that arrived too slowly): the same
 * JSON error shape, then the connection is closed. Nothing is written into a response already under way.
 */
export function onClientError(instanceId: string): (err: Error & { code?: string; reason?: string }, socket: Duplex) => void {
  return (err, socket) => {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || inFlight) {
      socket.destroy();
      return;
    }
    let status = 400;
    let code = 'MALFORMED_REQUEST';
    let message = `the request is not valid HTTP/1.1 (${err.reason ?? err.message})`;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      [status, code, message] = [431, 'HEADERS_TOO_LARGE', 'the request line and headers are larger than the server accepts (16 KiB)'];
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      [status, code, message] = [408, 'REQUEST_TIMEOUT', 'the request did not arrive in time'];
    }
    const body = JSON.stringify(errorBody(code, message)) + '\n';
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Sandcaster-Instance: ${instanceId}\r\n\r\n${body}`,
    );
    // A peer that never reads must not keep the socket: end() alone waits for it.
    setTimeout(() => socket.destroy(), 1000).unref();
    log.info('request', { status, error: err.code });
  };
}

/**
 * Caps open connections at `max`: node refuses (closes) new ones past it. Each refusal also closes the idle
 * keep-alive sockets (at most every 100 ms), so only requests in progress hold slots for long, and a warning
 * says how many were refused (at most once a minute).
 */
export function limitConnections(server: Server, max: number): void {
  server.maxConnections = max;
  let swept = 0;
  let refused = 0;
  let warned = 0;
  server.on('drop', () => {
    const now = Date.now();
    refused++;
    if (now - swept >= 100) {
      swept = now;
      server.closeIdleConnections();
    }
    if (now - warned >= 60_000) {
      warned = now;
      log.warn('connection limit reached; new connections refused', { maxConnections: max, refused, hint: 'raise SANDCASTER_MAX_CONNECTIONS if this is legitimate load' });
      refused = 0;
    }
  });
}
