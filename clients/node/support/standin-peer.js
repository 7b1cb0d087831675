#!/usr/bin/env node
'use strict';
// A scripted stand-in for the social-sidecar binary (own framing code, shared with nothing in lib/).
// STANDIN_MODE: 'ignore-exit' survives shutdown/exit/EOF/SIGTERM; 'crash-on-init' dies in initialize.
// Post text: 'hang', 'crash', 'error:<code>:<kind>', 'refresh', 'burst:<n>'. STANDIN_RECORD: file of messages in/out.

const fs = require('node:fs');

const modes = new Set((process.env.STANDIN_MODE || '').split(',').filter(Boolean));
const recordPath = process.env.STANDIN_RECORD;
const platforms = { facebook: ['post', 'validate', 'refresh'], instagram: ['post', 'validate', 'refresh'],
  linkedin: ['post', 'validate', 'refresh'], youtube: ['post', 'validate', 'refresh'],
  whatsapp: ['send', 'validate', 'refresh'] };
const record = (dir, msg) => { if (recordPath) fs.appendFileSync(recordPath, JSON.stringify({ dir, msg }) + '\n'); };
const frame = (msg) => { const b = Buffer.from(JSON.stringify(msg)); return Buffer.concat([Buffer.from(`Content-Length: ${b.length}\r\n\r\n`), b]); };
const send = (msg) => { record('out', msg); fs.writeSync(1, frame(msg)); };

let shutdown = false;
let nextId = 0;
let posts = 0;
const waiting = new Map();
const running = new Map();

class RpcError extends Error {
  constructor(code, message, data) { super(message); this.rpc = { code, message, ...(data ? { data } : {}) }; }
}

function ask(method, params) {
  const id = `s-${++nextId}`;
  return new Promise((resolve) => { waiting.set(id, resolve); send({ jsonrpc: '2.0', id, method, params }); });
}

async function platform(name, op, params) {
  const script = String(params.text || params.caption || params.title || '');
  if (script === 'hang') await new Promise(() => {}); // until $/cancelRequest wins the race below
  if (script === 'crash') { process.stderr.write('Fatal error: standin crashed on purpose\n'); process.exit(70); }
  if (script === 'garbage') { fs.writeSync(1, 'stray debug output\r\n\r\n'); await new Promise(() => {}); }
  if (script.startsWith('error:')) {
    const [, code, kind] = script.split(':');
    throw new RpcError(Number(code), `scripted ${kind}`, { kind, platform: name });
  }
  if (script === 'cancel-resolve') { // as the sidecar does when the parent is too slow
    const pending = ask('credentials/resolve', { platform: name, credentialRef: params.credentialRef, customerId: params.customerId });
    send({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: `s-${nextId}` } });
    const late = await pending;
    throw new RpcError(-31006, `resolve timed out; parent answered ${late.error && late.error.code}`, { kind: 'credential_unavailable' });
  }
  const answer = await ask('credentials/resolve', { platform: name, credentialRef: params.credentialRef, customerId: params.customerId });
  if (answer.error) { // as the sidecar does: the parent's message, and its word on retrying
    throw new RpcError(-31006, `credential unavailable: ${answer.error.message}`,
      { kind: 'credential_unavailable', retryable: !(answer.error.data && answer.error.data.retryable === false) });
  }
  if (params.workDoneToken !== undefined) { // an upload in three steps, as progress notifications
    const progress = (value) => send({ jsonrpc: '2.0', method: '$/progress', params: { token: params.workDoneToken, value } });
    progress({ kind: 'begin', title: `${name}/${op}`, percentage: 0 });
    for (const sent of [100, 200, 300]) progress({ kind: 'report', percentage: sent / 3, bytesSent: sent, bytesTotal: 300 });
    progress({ kind: 'end' });
  }
  if (op === 'validate') return { valid: true, accountId: answer.result.accountId };
  if (op === 'refresh' || script === 'refresh') {
    for (;;) {
      const ack = await ask('credentials/update', { platform: name, credentialRef: params.credentialRef,
        customerId: params.customerId, accessToken: 'new-access-token', refreshToken: 'rotated', expiresAt: '2030-01-01T00:00:00Z' });
      if ('result' in ack) break;
    }
    if (op === 'refresh') return { refreshed: true, expiresAt: '2030-01-01T00:00:00Z' };
  }
  if (script.startsWith('burst:')) {
    const n = Number(script.split(':')[1]);
    const frames = [];
    for (let i = 0; i < n; i++) frames.push(frame({ jsonrpc: '2.0', method: 'metrics/event', params: { eventId: `burst-${i}` } }));
    fs.writeSync(1, Buffer.concat(frames));
  }
  posts += 1;
  const postId = `${name}-post-${posts}`;
  send({ jsonrpc: '2.0', method: 'metrics/event', params: { eventId: `ev-${posts}`, platform: name, operation: op, success: true, postId } });
  return { platform: name, postId, postUrl: name === 'whatsapp' ? null : `https://example.test/${postId}`,
    status: 'published', attempts: 1, durationMs: 1, replayed: false };
}

async function dispatch(method, params) {
  if (method === 'initialize') {
    if (modes.has('crash-on-init')) { process.stderr.write('standin: crashing during initialize\n'); process.exit(3); }
    return { serverInfo: { name: 'standin', version: '0.0.1' }, protocolVersion: '1', capabilities: { platforms } };
  }
  if (method === 'shutdown') { shutdown = true; return null; }
  if (method === 'health') return { status: 'ok', version: '0.0.1', uptimeMs: 1, inFlight: running.size - 1 };
  if (method === 'test/echo') return params;
  if (method === 'metrics/prometheus') return { contentType: 'text/plain; version=1.0.0; charset=utf-8', text: `posts_total ${posts}\n` };
  const [name, op] = method.split('/');
  if (platforms[name] && platforms[name].includes(op)) return platform(name, op, params || {});
  throw new RpcError(-32601, `method not found: ${method}`);
}

function handle(msg) {
  record('in', msg);
  if (msg.method === undefined) { const r = waiting.get(msg.id); waiting.delete(msg.id); if (r) r(msg); return; }
  if (msg.id === undefined) {
    if (msg.method === 'exit' && !modes.has('ignore-exit')) process.exit(shutdown ? 0 : 1);
    if (msg.method === '$/cancelRequest') { const c = running.get(msg.params.id); if (c) c(); }
    return;
  }
  let cancel;
  const cancelled = new Promise((resolve) => { cancel = resolve; });
  const work = dispatch(msg.method, msg.params);
  running.set(msg.id, cancel);
  Promise.race([work, cancelled.then(() => { throw new RpcError(-32800, 'request cancelled', { kind: 'cancelled' }); })])
    .then((result) => send({ jsonrpc: '2.0', id: msg.id, result }),
      (err) => send({ jsonrpc: '2.0', id: msg.id, error: err.rpc || { code: -32603, message: String(err) } }))
    .finally(() => running.delete(msg.id));
  work.catch(() => {});
}

if (modes.has('ignore-exit')) process.on('SIGTERM', () => {});
let buffer = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = Number(/content-length:\s*(\d+)/i.exec(buffer.subarray(0, end).toString())[1]);
    if (buffer.length < end + 4 + length) return;
    handle(JSON.parse(buffer.subarray(end + 4, end + 4 + length).toString()));
    buffer = buffer.subarray(end + 4 + length);
  }
});
process.stdin.on('end', () => { if (!modes.has('ignore-exit')) process.exit(shutdown ? 0 : 1); else setInterval(() => {}, 1000); });
