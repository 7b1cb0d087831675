'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { PassThrough } = require('node:stream');
const { FrameDecoder, FramingError, encodeMessage, Connection, RemoteError, RateLimited, RequestCancelled,
  errorFromResponse, SidecarError, CallTimeout, ShuttingDown, SidecarUnavailable, ProtocolError } = require('../lib');

const frame = (msg) => encodeMessage(msg);

test('encoded frames put Content-Length first and count UTF-8 bytes', () => {
  const data = encodeMessage({ text: 'héllo 👋' });
  const [header, body] = data.toString('utf8').split('\r\n\r\n');
  assert.equal(header, `Content-Length: ${Buffer.byteLength(body)}`);
  assert.notEqual(Buffer.byteLength(body), body.length);
});

test('frames split at every byte boundary decode whole', () => {
  const stream = Buffer.concat([frame({ id: 1 }), frame({ id: 2, t: 'ü' }), frame({ id: 3 })]);
  for (let cut = 1; cut < stream.length; cut++) {
    const decoder = new FrameDecoder();
    const bodies = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
    assert.deepEqual(bodies.map((b) => JSON.parse(b).id), [1, 2, 3]);
    assert.equal(decoder.buffered, 0);
  }
});

test('many frames per read and byte-at-a-time reads', () => {
  const stream = Buffer.concat(Array.from({ length: 100 }, (_, i) => frame({ id: i })));
  assert.equal(new FrameDecoder().push(stream).length, 100);
  const drip = new FrameDecoder();
  const out = [];
  for (let i = 0; i < stream.length; i++) out.push(...drip.push(stream.subarray(i, i + 1)));
  assert.deepEqual(out.map((b) => JSON.parse(b).id), Array.from({ length: 100 }, (_, i) => i));
});

test('headers are case-insensitive; bad framing throws', () => {
  const ok = Buffer.from('content-type: x\r\ncontent-LENGTH: 2\r\n\r\n{}');
  assert.deepEqual(new FrameDecoder().push(ok).map(String), ['{}']);
  for (const bad of ['Content-Type: x\r\n\r\n{}', 'Content-Length: x\r\n\r\n', 'junk\r\n\r\n', 'Content-Length: 99999\r\n\r\n']) {
    assert.throws(() => new FrameDecoder({ maxFrameBytes: 1000 }).push(Buffer.from(bad)), FramingError);
  }
});

test('error objects map to classes by kind, then code', () => {
  const limited = errorFromResponse({ code: -31003, message: 'slow', data: { kind: 'rate_limited', retryAfterMs: 1500 } }, 'x/post');
  assert.ok(limited instanceof RateLimited && limited instanceof SidecarError);
  assert.equal(limited.retryAfterMs, 1500);
  assert.equal(limited.retryable, true);
  assert.ok(errorFromResponse({ code: -32800, message: 'c' }) instanceof RequestCancelled);
  const unknown = errorFromResponse({ code: -31999, message: 'n', data: { kind: 'new_kind' } });
  assert.equal(unknown.constructor, SidecarError);
  assert.equal(unknown.kind, 'new_kind');
  const closing = errorFromResponse({ code: -32600, message: 's', data: { kind: 'shutting_down' } });
  assert.ok(closing instanceof ShuttingDown && closing instanceof SidecarUnavailable && closing.retryable);
  assert.ok(errorFromResponse({ code: -32600, message: 'b', data: { kind: 'bad_framing' } }) instanceof ProtocolError);
});

function pair(handlers) {
  const fromPeer = new PassThrough();
  const toPeer = new PassThrough();
  const sent = [];
  const decoder = new FrameDecoder();
  toPeer.on('data', (chunk) => sent.push(...decoder.push(chunk).map((b) => JSON.parse(b))));
  return { connection: new Connection(fromPeer, toPeer, { handlers }), fromPeer, sent };
}
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('answers in any order and chunking reach their callers', async () => {
  const { connection, fromPeer, sent } = pair();
  const calls = [0, 1, 2].map((n) => connection.request('health', { n }));
  await tick();
  assert.deepEqual(sent.map((m) => m.id), [1, 2, 3]);
  const stream = Buffer.concat([frame({ jsonrpc: '2.0', id: 3, result: 'c' }), frame({ jsonrpc: '2.0', id: 1, result: 'a' }),
    frame({ jsonrpc: '2.0', id: 2, result: 'b' })]);
  fromPeer.write(stream.subarray(0, 9));
  await tick();
  fromPeer.write(stream.subarray(9));
  assert.deepEqual(await Promise.all(calls), ['a', 'b', 'c']);
});

test('AbortSignal sends $/cancelRequest and rejects with the reason', async () => {
  const { connection, fromPeer, sent } = pair();
  const controller = new AbortController();
  const call = connection.request('youtube/post', {}, { signal: controller.signal });
  await tick();
  controller.abort(new Error('user gave up'));
  await assert.rejects(call, /user gave up/);
  assert.deepEqual(sent.at(-1), { jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 1 } });
  fromPeer.write(frame({ jsonrpc: '2.0', id: 1, error: { code: -32800, message: 'cancelled' } })); // dropped quietly
  const timed = connection.request('health', undefined, { timeoutMs: 10 });
  await assert.rejects(timed, CallTimeout);
  assert.deepEqual(sent.at(-1), { jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 2 } });
  assert.equal(connection.inFlight, 0);
});

test('server requests are answered with their own id; handler errors become JSON-RPC errors', async () => {
  const { fromPeer, sent } = pair({
    echo: async (params) => ({ echo: params }),
    boom: () => { throw new Error('token-123 must not leak'); },
    refuse: () => { throw new RemoteError(-31006, 'no such credential', { kind: 'credential_unavailable' }); },
  });
  fromPeer.write(Buffer.concat([frame({ jsonrpc: '2.0', id: 's-1', method: 'echo', params: [1] }),
    frame({ jsonrpc: '2.0', id: 7, method: 'boom' }), frame({ jsonrpc: '2.0', id: 's-3', method: 'refuse' }),
    frame({ jsonrpc: '2.0', id: 8, method: 'nope' })]));
  await tick(); await tick();
  const byId = Object.fromEntries(sent.map((m) => [m.id, m]));
  assert.deepEqual(byId['s-1'].result, { echo: [1] });
  assert.equal(byId[7].error.code, -32603);
  assert.ok(!byId[7].error.message.includes('token'));
  assert.deepEqual(byId['s-3'].error, { code: -31006, message: 'no such credential', data: { kind: 'credential_unavailable' } });
  assert.equal(byId[8].error.code, -32601);
});

test('end of stream fails waiting requests', async () => {
  const { connection, fromPeer } = pair();
  connection.on('close', () => connection.failPending());
  const call = connection.request('health');
  fromPeer.end(frame({ jsonrpc: '2.0', id: 1 }).subarray(0, 5));
  await assert.rejects(call, /inside a frame/);
  await assert.rejects(connection.request('health'), /inside a frame/);
});
