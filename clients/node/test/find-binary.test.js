'use strict';
// Which binary the client spawns: explicit, then $SOCIAL_SIDECAR_BIN, then the one the npm package bundles (bin/).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// A copy of this package laid out as scripts/package packs it, with a stand-in binary in bin/.
function packaged() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'packaged-'));
  fs.cpSync(path.join(__dirname, '..', 'lib'), path.join(root, 'lib'), { recursive: true });
  fs.copyFileSync(path.join(__dirname, '..', 'package.json'), path.join(root, 'package.json'));
  const binary = path.join(root, 'bin', 'social-sidecar');
  fs.mkdirSync(path.dirname(binary));
  fs.writeFileSync(binary, '#!/bin/sh\n', { mode: 0o755 });
  return { findBinary: require(path.join(root, 'lib')).findBinary, binary };
}

test('the bundled binary comes after an explicit one and $SOCIAL_SIDECAR_BIN', (t) => {
  const saved = process.env.SOCIAL_SIDECAR_BIN;
  t.after(() => {
    if (saved === undefined) delete process.env.SOCIAL_SIDECAR_BIN;
    else process.env.SOCIAL_SIDECAR_BIN = saved;
  });
  const { findBinary, binary } = packaged();
  delete process.env.SOCIAL_SIDECAR_BIN;
  assert.equal(findBinary(), binary);
  assert.equal(findBinary('/opt/other/social-sidecar'), '/opt/other/social-sidecar');
  process.env.SOCIAL_SIDECAR_BIN = '/srv/social-sidecar';
  assert.equal(findBinary(), '/srv/social-sidecar');
});
