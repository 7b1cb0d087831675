'use strict';
// LSP base-protocol framing: `Content-Length: N\r\n\r\n` + N bytes of UTF-8 JSON. Pure: bytes in, bodies out.

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 8192;

class FramingError extends Error {}

/** Frame one JSON-RPC message as a single buffer (Content-Length first), so writes never interleave. */
function encodeMessage(message) {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}

/** Incremental decoder: push() chunks of any size, get back every complete body. */
class FrameDecoder {
  constructor({ maxFrameBytes = 64 * 1024 * 1024 } = {}) {
    this.buffer = Buffer.alloc(0);
    this.expected = null;
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held that do not yet make a frame (non-zero at EOF: a truncated frame). */
  get buffered() {
    return this.buffer.length;
  }

  push(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const bodies = [];
    for (;;) {
      if (this.expected === null) {
        const end = this.buffer.indexOf(HEADER_END);
        if (end < 0) {
          if (this.buffer.length > MAX_HEADER_BYTES) throw new FramingError('no end of header block');
          return bodies;
        }
        this.expected = this.parseHeaders(this.buffer.subarray(0, end).toString('latin1'));
        this.buffer = this.buffer.subarray(end + HEADER_END.length);
      }
      if (this.buffer.length < this.expected) return bodies;
      bodies.push(this.buffer.subarray(0, this.expected));
      this.buffer = this.buffer.subarray(this.expected);
      this.expected = null;
    }
  }

  parseHeaders(block) {
    let length = null;
    for (const line of block.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) throw new FramingError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
      if (line.slice(0, colon).trim().toLowerCase() === 'content-length') {
        const value = line.slice(colon + 1).trim();
        if (!/^\d+$/.test(value)) throw new FramingError(`invalid Content-Length ${JSON.stringify(value)}`);
        length = Number(value);
      }
    }
    if (length === null) throw new FramingError('header block without Content-Length');
    if (length > this.maxFrameBytes) throw new FramingError(`frame of ${length} bytes exceeds the limit`);
    return length;
  }
}

module.exports = { FrameDecoder, FramingError, encodeMessage };
