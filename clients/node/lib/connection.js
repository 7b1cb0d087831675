'use strict';
// A JSON-RPC 2.0 peer over a readable and a writable byte stream, framed like LSP. Knows nothing of processes.

const { EventEmitter } = require('node:events');
const { FrameDecoder, FramingError, encodeMessage } = require('./framing');
const { SidecarError, SidecarUnavailable, CallTimeout, errorFromResponse } = require('./errors');

/** Throw from a request handler to answer with this JSON-RPC error. */
class RemoteError extends Error {
  constructor(code, message, data = undefined) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/**
 * One JSON-RPC conversation. Outgoing requests are promises matched to replies by integer id; an AbortSignal or
 * `timeoutMs` sends `$/cancelRequest`. Incoming requests go to `handlers[method](params, {signal})` (the signal aborts
 * when the peer cancels them; they are then answered -32800), notifications are emitted
 * as `'notification'` (method, params). Emits `'close'` (reason) once, when the read side ends.
 */
class Connection extends EventEmitter {
  constructor(readable, writable, { handlers = {}, maxFrameBytes } = {}) {
    super();
    this.readable = readable;
    this.writable = writable;
    this.handlers = handlers;
    this.decoder = new FrameDecoder({ maxFrameBytes });
    this.nextId = 1;
    this.pending = new Map();
    this.cancelled = new Set();
    this.handling = new Map(); // incoming request id -> AbortController, for the peer's $/cancelRequest
    this.closed = false;
    this.ended = false;
    this.closeReason = 'connection closed';
    readable.on('data', (chunk) => this.onData(chunk));
    readable.on('end', () => this.end(this.decoder.buffered ? 'stream ended inside a frame' : 'end of stream'));
    readable.on('error', (err) => this.end(`read failed: ${err.message}`));
    writable.on('error', () => {}); // EPIPE after the peer died: reported through 'close', not as a crash here
  }

  /** Requests sent and not answered yet. */
  get inFlight() {
    return this.pending.size;
  }

  /**
   * Send a request; resolves with its result, rejects with the mapped SidecarError.
   * @param {string} method
   * @param {unknown} [params]
   * @param {{signal?: AbortSignal, timeoutMs?: number}} [options]
   */
  request(method, params, { signal, timeoutMs } = {}) {
    if (this.closed) return Promise.reject(new SidecarUnavailable(this.closeReason, { method }));
    if (signal && signal.aborted) return Promise.reject(signal.reason);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let timer = null;
      const abandon = (error) => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        cleanup();
        this.cancelled.add(id);
        if (this.cancelled.size > 256) this.cancelled.delete(this.cancelled.values().next().value);
        if (!this.closed) this.write({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id } });
        reject(error);
      };
      const onAbort = () => abandon(signal.reason);
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        if (signal) signal.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, {
        method,
        resolve: (value) => { cleanup(); resolve(value); },
        reject: (error) => { cleanup(); reject(error); },
      });
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs != null) {
        timer = setTimeout(() => abandon(new CallTimeout(`no answer within ${timeoutMs} ms; cancel sent`, { method })),
          timeoutMs);
      }
      const message = { jsonrpc: '2.0', id, method };
      if (params !== undefined) message.params = params;
      this.write(message);
    });
  }

  /** Send a notification. */
  notify(method, params) {
    const message = { jsonrpc: '2.0', method };
    if (params !== undefined) message.params = params;
    this.write(message);
  }

  /** Fail every waiting request with makeError(method) and refuse new ones. */
  failPending(makeError = (method) => new SidecarUnavailable(this.closeReason, { method })) {
    this.closed = true;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) entry.reject(makeError(entry.method));
  }

  write(message) {
    if (this.writable.destroyed || this.writable.writableEnded) return;
    this.writable.write(encodeMessage(message));
  }

  end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.closed = true;
    this.closeReason = reason;
    this.emit('close', reason);
  }

  onData(chunk) {
    if (this.closed) return;
    let bodies;
    try {
      bodies = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      this.end(`unreadable stream from the sidecar: ${err.message}`);
      return;
    }
    for (const body of bodies) {
      let message;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch {
        continue; // not JSON: nothing to answer, the peer is the server
      }
      for (const item of Array.isArray(message) ? message : [message]) {
        if (item && typeof item === 'object') this.dispatch(item);
      }
    }
  }

  dispatch(message) {
    const hasId = message.id !== undefined && message.id !== null;
    if (typeof message.method === 'string') {
      if (hasId) this.answer(message.id, message.method, message.params);
      else if (message.method === '$/cancelRequest') this.handling.get(message.params && message.params.id)?.abort();
      else this.emit('notification', message.method, message.params);
      return;
    }
    if (!hasId) return;
    const entry = this.pending.get(message.id);
    if (!entry) return; // late answer to a cancelled request, or unknown id
    this.pending.delete(message.id);
    if (message.error && typeof message.error === 'object') entry.reject(errorFromResponse(message.error, entry.method));
    else if ('result' in message) entry.resolve(message.result);
    else entry.reject(new SidecarError('answer without result or error', { method: entry.method }));
  }

  async answer(id, method, params) {
    const reply = { jsonrpc: '2.0', id };
    const controller = new AbortController();
    this.handling.set(id, controller);
    const cancelled = new Promise((resolve) => controller.signal.addEventListener('abort', resolve, { once: true }));
    try {
      const handler = this.handlers[method];
      if (typeof handler !== 'function') throw new RemoteError(-32601, `the client does not handle ${method}`);
      const work = Promise.resolve(handler(params, { signal: controller.signal }));
      work.catch(() => {});
      const result = await Promise.race([work, cancelled.then(() => {
        throw new RemoteError(-32800, `${method} cancelled by the sidecar`);
      })]);
      reply.result = result === undefined ? null : result;
    } catch (err) {
      if (err instanceof RemoteError) {
        reply.error = { code: err.code, message: err.message };
        if (err.data !== undefined) reply.error.data = err.data;
      } else {
        reply.error = { code: -32603, message: `${(err && err.name) || 'Error'} in the client's ${method} handler` };
      }
    } finally {
      this.handling.delete(id);
    }
    if (!this.closed) this.write(reply);
  }
}

module.exports = { Connection, RemoteError };
