'use strict';
// Publishing through the real binary to the platform fakes (Tests/Fakes, run as a CLI). Each platform's test skips
// only when the binary's initialize capabilities do not list it, or when no binary or fakes exist.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { Sidecar, findBinary, CredentialUnavailable } = require('../lib');

function locateFakes() {
  if (process.env.SOCIAL_SIDECAR_FAKES) return process.env.SOCIAL_SIDECAR_FAKES;
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'Package.swift'))) return path.join(dir, 'Tests', 'Fakes');
  }
  return null;
}

let binary = null;
let missing = null;
try {
  binary = findBinary();
  fs.accessSync(binary, fs.constants.X_OK);
} catch (err) {
  missing = err.message;
}
const fakesDir = locateFakes();
if (!missing && !(fakesDir && fs.existsSync(path.join(fakesDir, 'fake_platforms.py')))) {
  missing = `no platform fakes at ${fakesDir} (set SOCIAL_SIDECAR_FAKES)`;
}
if (missing && process.env.SOCIAL_SIDECAR_REQUIRE_BINARY === '1') throw new Error(missing);

async function startFakes() {
  const child = spawn('python3', [path.join(fakesDir, 'fake_platforms.py'), '--port', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value]);
  const { baseUrl } = JSON.parse(line);
  const get = async (p) => (await fetch(baseUrl + p)).json();
  return { child, baseUrl, get, config: await get('/_fake/sidecar-config'), credentials: await get('/_fake/credentials') };
}

const CONTENT = {
  facebook: ['post', { text: 'Hello from the Node client' }],
  linkedin: ['post', { text: 'Hello from the Node client' }],
  whatsapp: ['send', { to: '+15550001111', text: 'Hello from the Node client' }],
};

for (const [platform, [operation, content]] of Object.entries(CONTENT)) {
  test(`real binary + fakes: ${platform}/${operation} publishes and reports an event`, { skip: missing || false }, async (t) => {
    const fakes = await startFakes();
    const events = [];
    const sidecar = new Sidecar({ binary, config: fakes.config,
      resolveCredentials: async (req) => fakes.credentials[req.platform] });
    sidecar.on('event', (e) => events.push(e));
    try {
      await sidecar.start();
      if (!sidecar.supports(platform, operation)) {
        t.skip(`this build does not serve ${platform}/${operation}`);
        return;
      }
      const result = await sidecar[platform][operation]({ credentialRef: `CRED-${platform}`, customerId: 'CUST-1',
        agentId: 'AGENT-1', idempotencyKey: `node-${platform}`, ...content });
      const published = await fakes.get(`/_fake/published?platform=${platform}`);
      assert.equal(published.length, 1);
      assert.equal(result.postId, published[0].id);
      assert.equal(result.replayed, false);
      while (!events.length) await new Promise((r) => setTimeout(r, 10));
      assert.equal(events[0].postId, result.postId);
      assert.equal(events[0].customerId, 'CUST-1');
      const replay = await sidecar[platform][operation]({ credentialRef: `CRED-${platform}`, customerId: 'CUST-1',
        agentId: 'AGENT-1', idempotencyKey: `node-${platform}`, ...content });
      assert.equal(replay.replayed, true);
      sidecar.resolveCredentials = () => { throw new Error('vault offline'); };
      await assert.rejects(sidecar[platform].validate({ credentialRef: 'CRED-other', customerId: 'CUST-2' }),
        CredentialUnavailable);
    } finally {
      await sidecar.close();
      fakes.child.stdin.end();
      await new Promise((resolve) => fakes.child.once('exit', resolve));
    }
  });
}

test('real binary + fakes: an aborted publish is cancelled inside the sidecar', { skip: missing || false }, async (t) => {
  const fakes = await startFakes();
  const sidecar = new Sidecar({ binary, config: fakes.config, resolveCredentials: async (req) => fakes.credentials[req.platform] });
  try {
    await sidecar.start();
    if (!sidecar.supports('facebook', 'post')) {
      t.skip('this build does not serve facebook/post');
      return;
    }
    await fetch(`${fakes.baseUrl}/_fake/script`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ platform: 'facebook', path: '/feed$', action: 'hang' }]) });
    const call = sidecar.facebook.post({ credentialRef: 'CRED-fb', customerId: 'CUST-1', agentId: 'AGENT-1', text: 'slow' },
      { signal: AbortSignal.timeout(500) });
    await assert.rejects(call, { name: 'TimeoutError' });
    let health = await sidecar.health();
    while (health.inFlight > 0) health = await sidecar.health(); // the sidecar stops the call on $/cancelRequest
    assert.equal(health.inFlight, 0);
    assert.deepEqual(await fakes.get('/_fake/published?platform=facebook'), []);
  } finally {
    await sidecar.close();
    fakes.child.stdin.end();
    await new Promise((resolve) => fakes.child.once('exit', resolve));
  }
});

test('real binary + fakes: a YouTube upload reports its progress to onProgress', { skip: missing || false }, async (t) => {
  const fakes = await startFakes();
  const sidecar = new Sidecar({ binary, config: fakes.config, resolveCredentials: async (req) => fakes.credentials[req.platform] });
  const progress = [];
  try {
    await sidecar.start();
    if (!sidecar.supports('youtube', 'post')) {
      t.skip('this build does not serve youtube/post');
      return;
    }
    const result = await sidecar.youtube.post({ credentialRef: 'CRED-youtube', customerId: 'CUST-1', agentId: 'AGENT-1',
      title: 'Node upload', videoUrl: `${fakes.baseUrl}/media/video-20m.mp4`, privacyStatus: 'private' },
    { onProgress: (value) => progress.push(value) });
    assert.ok(result.postId);
    assert.equal(result.waitedMs, 0);
    assert.deepEqual([progress[0].kind, progress[progress.length - 1].kind], ['begin', 'end']);
    const sent = progress.filter((p) => p.bytesSent !== undefined).map((p) => p.bytesSent);
    assert.deepEqual(sent, [...sent].sort((a, b) => a - b));
    assert.equal(sent[sent.length - 1], 20 * 1024 * 1024);
  } finally {
    await sidecar.close();
    fakes.child.stdin.end();
    await new Promise((resolve) => fakes.child.once('exit', resolve));
  }
});

test('real binary + fakes: delete, insights and status of a YouTube video', { skip: missing || false }, async (t) => {
  const fakes = await startFakes();
  const sidecar = new Sidecar({ binary, config: fakes.config, resolveCredentials: async (req) => fakes.credentials[req.platform] });
  const post = (body) => fetch(`${fakes.baseUrl}/_fake/engagement`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  try {
    await sidecar.start();
    if (!sidecar.supports('youtube', 'insights')) {
      t.skip('this build does not serve youtube/insights');
      return;
    }
    const who = { credentialRef: 'CRED-youtube', customerId: 'CUST-1' };
    const video = await sidecar.youtube.post({ ...who, agentId: 'AGENT-1', title: 'Counted',
      videoUrl: `${fakes.baseUrl}/media/video-1m.mp4` });
    await post({ postId: video.postId, stats: { viewCount: 77, likeCount: 7 } });
    const insights = await sidecar.youtube.insights({ ...who, postId: video.postId, metrics: ['views', 'likes'] });
    assert.deepEqual(insights.metrics, { views: 77, likes: 7 });
    assert.equal(insights.raw.statistics.viewCount, '77');
    const status = await sidecar.youtube.status({ ...who, postId: video.postId });
    assert.ok(['processing', 'published'].includes(status.state));
    assert.equal((await sidecar.youtube.delete({ ...who, postId: video.postId })).deleted, true);
    assert.equal((await sidecar.youtube.status({ ...who, postId: video.postId })).state, 'deleted');
    assert.equal(sidecar.supports('whatsapp', 'delete'), false);
    await assert.rejects(sidecar.whatsapp.delete({ credentialRef: 'CRED-wa', customerId: 'CUST-1', postId: 'wamid.1' }),
      { name: 'Unsupported' });
  } finally {
    await sidecar.close();
    fakes.child.stdin.end();
    await new Promise((resolve) => fakes.child.once('exit', resolve));
  }
});
