'use strict';
// The package's entry points agree: ESM (lib/index.mjs) exports what CommonJS (lib/index.js) does, and the type
// declarations (lib/index.d.ts) declare every runtime export.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const lib = path.join(__dirname, '..', 'lib');
const cjs = require(lib);

test('import and require give the same exports', async () => {
  const esm = await import(path.join(lib, 'index.mjs'));
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), Object.keys(cjs).sort());
  for (const name of Object.keys(cjs)) assert.equal(esm[name], cjs[name], name);
  assert.equal(esm.default, cjs);
});

test('every runtime export is declared in index.d.ts', () => {
  const declarations = fs.readFileSync(path.join(lib, 'index.d.ts'), 'utf8');
  const declared = new Set([...declarations.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual(Object.keys(cjs).filter((name) => !declared.has(name)), []);
  assert.deepEqual([...declared].filter((name) => !(name in cjs)), []);
});

test('package.json routes import, require and types', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  assert.equal(pkg.private, undefined);
  assert.equal(pkg.license, 'Apache-2.0');
  const root = pkg.exports['.'];
  for (const [condition, file] of Object.entries(root)) {
    assert.ok(fs.existsSync(path.join(__dirname, '..', file)), `${condition}: ${file}`);
  }
  assert.equal(Object.keys(root)[0], 'types'); // TypeScript reads the first matching condition
});
