'use strict';
// Lifecycle against the real social-sidecar binary ($SOCIAL_SIDECAR_BIN or the repository's .build folder).
// Skipped without a binary, unless SOCIAL_SIDECAR_REQUIRE_BINARY=1 (CI) makes that a failure.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { Sidecar, findBinary, MethodNotFound, InvalidParams } = require('../lib');

let binary = null;
let missing = null;
try {
  binary = findBinary();
  fs.accessSync(binary, fs.constants.X_OK);
} catch (err) {
  missing = err.message;
}
if (missing && process.env.SOCIAL_SIDECAR_REQUIRE_BINARY === '1') throw new Error(missing);
const skip = missing ? `no binary: ${missing}` : false;

test('real binary: initialize, health, unknown method, clean exit', { skip }, async () => {
  const sidecar = new Sidecar({ binary });
  const logs = [];
  sidecar.on('log', (entry) => logs.push(entry));
  const init = await sidecar.start();
  assert.equal(init.serverInfo.name, 'social-sidecar');
  assert.ok(init.protocolVersion);
  const health = await sidecar.health();
  assert.equal(health.status, 'ok');
  assert.equal(health.version, init.serverInfo.version);
  await assert.rejects(sidecar.request('tiktok/post', {}), MethodNotFound);
  const pid = sidecar.pid;
  await sidecar.close();
  assert.equal(sidecar.lastExitCode, 0);
  assert.ok(!fs.existsSync(`/proc/${pid}`));
  assert.ok(logs.some((l) => typeof l.msg === 'string' && typeof l.level === 'string'), 'structured stderr logs');
});

test('real binary: a bad config key is invalid params', { skip }, async () => {
  const sidecar = new Sidecar({ binary, config: { retyr: { maxAttempts: 1 } } });
  await assert.rejects(sidecar.start(), InvalidParams);
  await sidecar.close();
});

test('real binary: killed process is replaced on the next call', { skip }, async () => {
  const sidecar = new Sidecar({ binary });
  try {
    await sidecar.start();
    const first = sidecar.pid;
    process.kill(first, 'SIGKILL');
    while (sidecar.pid === first) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await sidecar.health()).status, 'ok');
    assert.notEqual(sidecar.pid, first);
    assert.equal(sidecar.restarts, 1);
  } finally {
    await sidecar.close();
  }
});
