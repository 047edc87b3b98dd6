// tokportal-sandbox as a Node user gets it, installed from its tarballs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { startSandbox, binaryPath } = require('tokportal-sandbox');
const KEY = 'sk_test_node';

async function call(url, method = 'GET', body) {
  const answer = await fetch(url, {
    method,
    headers: { 'X-API-Key': KEY, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return [answer.status, await answer.json()];
}

test('the binary comes from the platform package', () => {
  assert.match(binaryPath(), /tokportal-sandbox-linux-x64/);
});

test('startSandbox serves the contract', async () => {
  const sandbox = await startSandbox();
  try {
    const [status, balance] = await call(`${sandbox.url}/credits/balance`);
    assert.equal(status, 200);
    assert.equal(balance.data.balance, 1000);
    const [created, bundle] = await call(`${sandbox.url}/bundles`, 'POST', {
      bundle_type: 'account_only',
      country: 'USA',
    });
    assert.equal(created, 201);
    assert.equal(bundle.data.status, 'draft');
    const [refused, error] = await call(`${sandbox.url}/bundles`, 'POST', { bundle_type: 'nope' });
    assert.equal(refused, 400);
    assert.equal(error.error.code, 'VALIDATION_ERROR');
    // The journal the inspector page reads, and the page itself.
    const [listed, journal] = await call(`${sandbox.url}/_sandbox/requests?status=4xx`);
    assert.equal(listed, 200);
    assert.equal(journal.data.length, 1);
    assert.equal(journal.data[0].violations[0].field, 'bundle_type');
    const page = await fetch(sandbox.inspectorUrl);
    assert.match(await page.text(), /TokPortal sandbox inspector/);
  } finally {
    await sandbox.stop();
  }
});

test('a sandbox that cannot start says why', async () => {
  await assert.rejects(startSandbox({ args: ['--credits', 'not-a-number'] }), /not-a-number/);
});

test('the handle advances a key\'s clock and verifies', async () => {
  const { SandboxError, VerificationError } = require('tokportal-sandbox');
  const sandbox = await startSandbox();
  const key = 'sk_test_node_clock';
  const as = async (url, method = 'GET', body) => {
    const answer = await fetch(url, {
      method,
      headers: { 'X-API-Key': key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return [answer.status, await answer.json()];
  };
  try {
    const clock = await sandbox.setClock(key, { frozenAt: '2026-06-01T00:00:00Z', delays: { account: '24h' } });
    assert.equal(clock.simulated, true);
    const [, bundle] = await as(`${sandbox.url}/bundles`, 'POST', { bundle_type: 'account_only', country: 'USA' });
    assert.equal(bundle.data.created_at, '2026-06-01T00:00:00Z');
    await as(`${sandbox.url}/bundles/${bundle.data.id}/account`, 'PUT', { username: 'node_clock', visible_name: 'Node' });
    await as(`${sandbox.url}/bundles/${bundle.data.id}/publish`, 'POST');
    const moved = await sandbox.advance('1d', { key });
    assert.deepEqual(moved.transitions.map((t) => [t.at, t.to]), [['2026-06-02T00:00:00Z', 'in_review']]);
    assert.equal((await sandbox.clock('sk_test_node_other')).simulated, false);
    assert.equal((await sandbox.verify({ key, operation: 'createBundle', times: 1 })).found, 1);
    await assert.rejects(sandbox.verify({ key, operation: 'createBundle', times: 3 }), (e) => e instanceof VerificationError && e.found === 1);
    await assert.rejects(sandbox.advance(undefined, { key, to: '2020-01-01T00:00:00Z' }), (e) => e instanceof SandboxError && e.code === 'CLOCK_BACKWARDS');
  } finally {
    await sandbox.stop();
  }
});

test('a world snapshot is restored', async () => {
  const sandbox = await startSandbox();
  const key = 'sk_test_node_world';
  const create = () =>
    fetch(`${sandbox.url}/bundles`, {
      method: 'POST',
      headers: { 'X-API-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ bundle_type: 'account_only', country: 'USA' }),
    });
  const count = async () =>
    (await (await fetch(`${sandbox.url}/bundles`, { headers: { 'X-API-Key': key } })).json()).pagination.total;
  try {
    assert.equal((await create()).status, 201);
    const world = await sandbox.snapshot();
    assert.equal(world.keys.length, 1);
    await create();
    assert.equal(await count(), 2);
    await sandbox.restore(world);
    assert.equal(await count(), 1);
  } finally {
    await sandbox.stop();
  }
});
