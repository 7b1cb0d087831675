'use strict';
// The Sidecar class against the scripted stand-in peer (support/standin-peer.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Sidecar, SidecarCrashed, SidecarUnavailable, CredentialUnavailable, RateLimited, CallTimeout,
  MethodNotFound, CredentialNotFound, InvalidParams } = require('../lib');

const STANDIN = path.join(__dirname, '..', 'support', 'standin-peer.js');
const FB = { credentialRef: 'CRED-fb-001', customerId: 'CUST-123', agentId: 'AGENT-456' };

function standin(mode = '', options = {}) {
  const record = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'standin-')), 'record.jsonl');
  const sidecar = new Sidecar({ binary: process.execPath, args: [STANDIN], env: { STANDIN_MODE: mode, STANDIN_RECORD: record },
    resolveCredentials: async (req) => ({ accessToken: `tok-${req.credentialRef}`, accountId: 'PAGE-1' }), ...options });
  const read = (dir) => (fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l)).filter((e) => e.dir === dir).map((e) => e.msg) : []);
  return { sidecar, inbound: () => read('in'), outbound: () => read('out') };
}
const alive = (pid) => fs.existsSync(`/proc/${pid}`);
const until = async (predicate) => { while (!predicate()) await new Promise((r) => setTimeout(r, 10)); };

test('lifecycle: initialize, health, clean shutdown with exit code 0', async () => {
  const { sidecar, inbound } = standin('', { config: { retry: { maxAttempts: 2 } } });
  const init = await sidecar.start();
  assert.equal(init.serverInfo.name, 'standin');
  assert.ok(sidecar.supports('whatsapp', 'send') && !sidecar.supports('whatsapp', 'post'));
  assert.equal((await sidecar.health()).status, 'ok');
  const pid = sidecar.pid;
  await sidecar.close();
  assert.equal(sidecar.lastExitCode, 0);
  assert.ok(!alive(pid));
  // Nothing of ours keeps the parent alive after close (a leftover shutdown timer once held it for 12 s).
  assert.deepEqual(process.getActiveResourcesInfo().filter((r) => r === 'Timeout'), []);
  assert.deepEqual(inbound().filter((m) => m.method).map((m) => m.method), ['initialize', 'initialized', 'health', 'shutdown', 'exit']);
  assert.deepEqual(inbound()[0].params.config, { retry: { maxAttempts: 2 } });
});

test('posts resolve credentials through the callback and emit events', async () => {
  const events = [];
  const updates = [];
  const { sidecar, inbound } = standin('', { onCredentialsUpdated: async (u) => { updates.push(u); } });
  sidecar.on('event', (e) => events.push(e));
  try {
    const result = await sidecar.facebook.post({ ...FB, text: 'burst:30', idempotencyKey: 'k-1' });
    assert.equal(result.postId, 'facebook-post-1');
    assert.equal(events.length, 31);
    assert.deepEqual(events.slice(0, 30).map((e) => e.eventId), Array.from({ length: 30 }, (_, i) => `burst-${i}`));
    const refreshed = await sidecar.youtube.refresh({ credentialRef: 'CRED-yt', customerId: 'CUST-1' });
    assert.equal(refreshed.refreshed, true);
    assert.equal(updates.length, 1);
    assert.equal(updates[0].refreshToken, 'rotated');
    const sent = await sidecar.whatsapp.send({ ...FB, to: '+15551234567', text: 'hi' });
    assert.equal(sent.postUrl, null);
  } finally {
    await sidecar.close();
  }
  const resolveAnswer = inbound().find((m) => m.id === 's-1');
  assert.deepEqual(resolveAnswer.result, { accessToken: 'tok-CRED-fb-001', accountId: 'PAGE-1' });
});

test('a throwing resolver becomes credential_unavailable; only a CredentialError says why', async () => {
  const resolveCredentials = (req) => {
    if (req.credentialRef === 'CRED-gone') throw new CredentialNotFound('no credential CRED-gone for this customer');
    throw new Error('secret-bearing text');
  };
  const { sidecar } = standin('', { resolveCredentials });
  try {
    await assert.rejects(sidecar.linkedin.post({ ...FB, text: 'x' }), (err) => err instanceof CredentialUnavailable
      && /threw Error/.test(err.message) && !/secret-bearing/.test(err.message) && err.retryable);
    await assert.rejects(sidecar.linkedin.post({ ...FB, credentialRef: 'CRED-gone', text: 'x' }),
      (err) => err instanceof CredentialUnavailable && /no credential CRED-gone/.test(err.message) && !err.retryable);
    await assert.rejects(sidecar.facebook.post({ ...FB, text: 'error:-31003:rate_limited' }), RateLimited);
    await assert.rejects(sidecar.request('tiktok/post', {}), MethodNotFound);
  } finally {
    await sidecar.close();
  }
});

test('AbortSignal and timeoutMs send $/cancelRequest; the peer answers -32800', async () => {
  const { sidecar, inbound, outbound } = standin();
  try {
    const controller = new AbortController();
    const call = sidecar.youtube.post({ ...FB, title: 'hang' }, { signal: controller.signal });
    await until(() => inbound().some((m) => m.method === 'youtube/post'));
    controller.abort();
    await assert.rejects(call, { name: 'AbortError' });
    await assert.rejects(sidecar.youtube.post({ ...FB, title: 'hang' }, { timeoutMs: 100 }), CallTimeout);
    assert.equal((await sidecar.health()).status, 'ok');
  } finally {
    await sidecar.close();
  }
  const posts = inbound().filter((m) => m.method === 'youtube/post').map((m) => m.id);
  assert.deepEqual(inbound().filter((m) => m.method === '$/cancelRequest').map((m) => m.params.id), posts);
  assert.deepEqual(outbound().filter((m) => m.error && m.error.code === -32800).map((m) => m.id), posts);
});

test('a killed sidecar fails the call in flight; the next call gets a fresh process', async () => {
  const { sidecar, inbound } = standin();
  try {
    await sidecar.start();
    const first = sidecar.pid;
    const call = sidecar.facebook.post({ ...FB, text: 'hang' });
    await until(() => inbound().some((m) => m.method === 'facebook/post'));
    process.kill(first, 'SIGKILL');
    await assert.rejects(call, (err) => err instanceof SidecarCrashed && err.outcomeUnknown && /SIGKILL/.test(err.message));
    assert.ok(!alive(first));
    assert.equal((await sidecar.health()).status, 'ok');
    assert.notEqual(sidecar.pid, first);
    assert.equal(sidecar.restarts, 1);
    await assert.rejects(sidecar.whatsapp.send({ ...FB, to: '+1', text: 'crash' }), /exited with code 70.*Fatal error/);
  } finally {
    await sidecar.close();
  }
});

test('a sidecar ignoring exit and SIGTERM is killed; a failed start is unavailable', async () => {
  const { sidecar } = standin('ignore-exit', { shutdownTimeoutMs: 200 });
  await sidecar.start();
  const pid = sidecar.pid;
  await sidecar.close();
  assert.equal(sidecar.lastSignal, 'SIGKILL');
  assert.ok(!alive(pid));
  const broken = standin('crash-on-init').sidecar;
  await assert.rejects(broken.start(), (err) => err instanceof SidecarUnavailable && /crashing during initialize/.test(err.message));
  await broken.close();
  await assert.rejects(broken.health(), /closed/);
});

test('stderr lines are emitted as log entries', async () => {
  const { sidecar } = standin();
  const logs = [];
  sidecar.on('log', (entry) => logs.push(entry));
  try {
    await sidecar.whatsapp.send({ ...FB, to: '+1', text: 'crash' }).catch(() => {});
  } finally {
    await sidecar.close();
  }
  assert.ok(logs.some((l) => l.level === 'warn' && l.msg === 'Fatal error: standin crashed on purpose'));
});

test('the sidecar cancelling a slow resolve aborts the resolver signal and gets -32800', async () => {
  let aborted = false;
  const { sidecar } = standin('', {
    resolveCredentials: (req, { signal }) => new Promise(() => { signal.addEventListener('abort', () => { aborted = true; }); }),
  });
  try {
    await assert.rejects(sidecar.facebook.post({ ...FB, text: 'cancel-resolve' }),
      (err) => err instanceof CredentialUnavailable && /parent answered -32800/.test(err.message));
    assert.ok(aborted);
  } finally {
    await sidecar.close();
  }
});

test('a corrupted stdout kills and replaces the process', async () => {
  const { sidecar } = standin();
  try {
    await sidecar.start();
    const first = sidecar.pid;
    await assert.rejects(sidecar.facebook.post({ ...FB, text: 'garbage' }),
      (err) => err instanceof SidecarCrashed && /SIGKILL.*unreadable stream/.test(err.message));
    assert.ok(!alive(first));
    assert.equal((await sidecar.facebook.post({ ...FB, text: 'fine' })).postId, 'facebook-post-1');
  } finally {
    await sidecar.close();
  }
});

test('timeoutMs is the sidecar\'s deadlineMs; onProgress gets the call\'s $/progress values', async () => {
  const { sidecar, inbound } = standin('', { timeoutMs: 12500 });
  const progress = [];
  try {
    const result = await sidecar.youtube.post({ ...FB, title: 'Upload', videoUrl: 'https://v' },
      { onProgress: (value) => progress.push(value) });
    assert.equal(result.postId, 'youtube-post-1');
    await sidecar.facebook.post({ ...FB, text: 'x' }, { timeoutMs: 2000 });
  } finally {
    await sidecar.close();
  }
  const [upload, post] = inbound().filter((m) => /\/post$/.test(m.method || ''));
  assert.equal(upload.params.deadlineMs, 12500);
  assert.equal(post.params.deadlineMs, 2000);
  assert.equal(typeof upload.params.workDoneToken, 'string');
  assert.equal(post.params.workDoneToken, undefined);
  assert.deepEqual(progress.map((p) => p.kind), ['begin', 'report', 'report', 'report', 'end']);
  assert.deepEqual(progress.filter((p) => p.bytesSent !== undefined).map((p) => p.bytesSent), [100, 200, 300]);
});

test('a snake_case param is refused by the client, naming it as written', async () => {
  const { sidecar, inbound } = standin();
  try {
    await assert.rejects(sidecar.facebook.post({ credential_ref: 'CRED-fb-001', customerId: 'C', agentId: 'A', text: 'x' }),
      (err) => err instanceof InvalidParams && err.data.field === 'credential_ref'
        && /`credential_ref` is not a param of facebook\/post: this client spells it `credentialRef`/.test(err.message));
  } finally {
    await sidecar.close();
  }
  assert.equal(inbound().filter((m) => m.method === 'facebook/post').length, 0);
});
