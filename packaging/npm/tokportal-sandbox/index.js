'use strict';
// The offline TokPortal sandbox for Node test suites. The `tokportal` binary
// comes in a package per platform (an optional dependency, the esbuild/biome
// pattern: npm installs only the one that matches); TOKPORTAL_BINARY_PATH
// points at another one.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const readline = require('node:readline');

/** The `tokportal` binary for this platform. */
function binaryPath() {
  const fromEnv = process.env.TOKPORTAL_BINARY_PATH;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) {
      throw new Error(`TOKPORTAL_BINARY_PATH=${fromEnv} does not exist`);
    }
    return fromEnv;
  }
  const pkg = `tokportal-sandbox-${process.platform}-${process.arch}`;
  const exe = process.platform === 'win32' ? 'tokportal.exe' : 'tokportal';
  try {
    return require.resolve(`${pkg}/bin/${exe}`);
  } catch {
    throw new Error(
      `no tokportal binary for ${process.platform}-${process.arch}: install ${pkg} ` +
        '(an optional dependency of tokportal-sandbox; was it skipped with --no-optional?), ' +
        'or set TOKPORTAL_BINARY_PATH'
    );
  }
}

/** A refusal of a control route, with the sandbox's `code` and `status`. */
class SandboxError extends Error {
  constructor(message, code, status) {
    super(message);
    this.name = 'SandboxError';
    this.code = code;
    this.status = status;
  }
}

/** A `verify` whose count did not hold: `found`, and the `closest` requests. */
class VerificationError extends Error {
  constructor(message, found, closest) {
    super(message);
    this.name = 'VerificationError';
    this.code = 'ERR_ASSERTION';
    this.found = found;
    this.closest = closest;
  }
}

/** One request to a `/_sandbox/` route: its `data`, or the refusal. */
async function control(url, method, route, key, body) {
  const headers = {};
  if (key) headers['X-API-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const answer = await fetch(`${url}/_sandbox/${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let parsed = null;
  try {
    parsed = await answer.json();
  } catch {
    parsed = null;
  }
  if (answer.ok) return parsed ? parsed.data : null;
  const error = (parsed && parsed.error) || {};
  const message = error.message || `HTTP ${answer.status}`;
  if (error.code === 'VERIFICATION_FAILED') {
    const details = error.details || {};
    throw new VerificationError(message, details.found || 0, details.closest || []);
  }
  throw new SandboxError(message, error.code, answer.status);
}

/** The controls of a sandbox at `url`: every clock control is per API key. */
function controls(url) {
  return {
    clock: (key) => control(url, 'GET', 'clock', key),
    setClock: (key, { frozenAt, delays = {} } = {}) =>
      control(url, 'POST', 'clock', key, frozenAt ? { frozen_at: frozenAt, delays } : { delays }),
    advance: (by, { key, to } = {}) =>
      control(url, 'POST', 'clock/advance', key, to ? { to } : { by }),
    realTime: (key) => control(url, 'DELETE', 'clock', key),
    flagDownloadIssue: (key, bundleId, position) =>
      control(url, 'POST', 'manager', key, { bundle_id: bundleId, position, flag: 'download_issue' }),
    verify: ({ key, ...asked } = {}) => control(url, 'POST', 'verify', key, asked),
    snapshot: ({ key } = {}) => control(url, 'GET', 'snapshot', key),
    restore: (doc, { key } = {}) => control(url, 'POST', 'snapshot', key, doc),
  };
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill();
});

/**
 * Starts `tokportal sandbox --port 0` and resolves to `{ url, stop }` once it
 * listens. It is stopped when Node exits, or by `stop()`. A sandbox that does
 * not start rejects with its own message.
 */
function startSandbox({ args = [], timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(binaryPath(), ['sandbox', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      reject(error);
      return;
    }
    running.add(child);
    const stderr = [];
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 200) stderr.push(chunk.toString());
    });
    const stop = () =>
      new Promise((done) => {
        running.delete(child);
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill();
      });
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`the sandbox did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const prefix = 'listening on ';
      if (line.startsWith(prefix)) {
        const url = line.slice(prefix.length).trim();
        resolve({ url, inspectorUrl: `${url}/_sandbox/`, stop, process: child, ...controls(url) });
      } else {
        stop();
        reject(new Error(`the sandbox said: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      // Once it listens, this rejection is ignored (the promise is settled).
      const message = stderr.join('').trim() || `exit status ${code}`;
      reject(new Error(`the sandbox did not start: ${message}`));
    });
  });
}

module.exports = { binaryPath, startSandbox, SandboxError, VerificationError };
