'use strict';
// The Sidecar: spawns social-sidecar, initialises it, answers its credential requests, restarts it after a crash.

const { spawn } = require('node:child_process');
const { EventEmitter, once } = require('node:events');
const fs = require('node:fs');
const path = require('node:path');
const { Connection, RemoteError } = require('./connection');
const {
  SidecarUnavailable, SidecarCrashed, SidecarError, InvalidParams, CredentialError,
} = require('./errors');

const PLATFORMS = ['facebook', 'instagram', 'linkedin', 'youtube', 'whatsapp'];
const VERSION = require('../package.json').version;

// Where the package built by scripts/package carries the executable.
const BUNDLED_BINARY = path.join(__dirname, '..', 'bin', 'social-sidecar');

/**
 * `binary`, else $SOCIAL_SIDECAR_BIN, else the one bundled in this package (bin/social-sidecar), else
 * <repo>/.build/{release,debug}/social-sidecar above this package.
 */
function findBinary(binary) {
  if (binary) return binary;
  if (process.env.SOCIAL_SIDECAR_BIN) return process.env.SOCIAL_SIDECAR_BIN;
  const looked = [BUNDLED_BINARY];
  try {
    fs.accessSync(BUNDLED_BINARY, fs.constants.X_OK);
    return BUNDLED_BINARY;
  } catch {
    // not a packaged install
  }
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'Package.swift'))) {
      for (const config of ['release', 'debug']) {
        const candidate = path.join(dir, '.build', config, 'social-sidecar');
        try {
          fs.accessSync(candidate, fs.constants.X_OK);
          return candidate;
        } catch {
          looked.push(candidate);
        }
      }
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new SidecarUnavailable(
    `no social-sidecar binary: pass binary, set SOCIAL_SIDECAR_BIN, install the packaged build, or build it (looked at ${looked.join(', ')})`,
  );
}

const graceMs = (config) => {
  const grace = config['shutdown.graceMs'] ?? config.shutdown?.graceMs;
  return typeof grace === 'number' ? grace : 10000;
};
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A supervised social-sidecar child process.
 *
 * Events: 'event' (a metrics/event's params), 'breakerChange' (breaker/stateChanged params), 'log' (one stderr line,
 * parsed when it is JSON, else {level: 'warn', msg}), 'notification' (method, params) for anything else,
 * 'crash' (SidecarCrashed) when a process dies unexpectedly.
 */
class Sidecar extends EventEmitter {
  /**
   * @param {object} [options]
   * @param {string} [options.binary]
   * @param {string[]} [options.args] extra command-line arguments
   * @param {Record<string,string>} [options.env] added to this process's environment
   * @param {object} [options.config] the initialize config, sent again after every restart
   * @param {(req: {platform, credentialRef, customerId}, {signal}) => any} [options.resolveCredentials] answers
   *   credentials/resolve with {accessToken, accountId, refreshToken?, expiresAt?, clientId?, clientSecret?};
   *   throw CredentialNotFound (permanent) or CredentialError (retryable) to fail the call with that message;
   *   anything else fails it retryably, naming only the error's name
   * @param {(update: object) => any} [options.onCredentialsUpdated] persist a refreshed token; the sidecar counts the
   *   return (or the promise resolving) as the acknowledgement and asks again if it throws
   * @param {number|null} [options.timeoutMs] what a call may take by default (30000; null: no limit). A platform
   *   call sends it as the sidecar's deadlineMs and waits answerGraceMs longer, so the sidecar's own answer arrives
   *   before CallTimeout
   * @param {number} [options.answerGraceMs] how much longer than timeoutMs the client waits for an answer (1000)
   * @param {number} [options.shutdownTimeoutMs] wait for shutdown and exit before SIGTERM, then SIGKILL (default: the
   *   sidecar's shutdown.graceMs, 10 s, plus 2 s)
   * @param {number[]} [options.restartDelaysMs] wait after the 1st, 2nd, ... crash in a row before restarting
   */
  constructor({
    binary, args = [], env = {}, config = {}, clientInfo, resolveCredentials, onCredentialsUpdated, timeoutMs = 30000,
    answerGraceMs = 1000, shutdownTimeoutMs, restartDelaysMs = [0, 500, 1000, 2000, 5000, 10000, 30000],
  } = {}) {
    super();
    this.binary = binary;
    this.args = args;
    this.env = env;
    this.config = config;
    this.clientInfo = clientInfo || { name: 'social-sidecar-node', version: VERSION };
    this.resolveCredentials = resolveCredentials;
    this.onCredentialsUpdated = onCredentialsUpdated;
    this.timeoutMs = timeoutMs;
    this.answerGraceMs = answerGraceMs;
    this.progress = new Map(); // workDoneToken -> onProgress
    this.nextProgressToken = 1;
    this.shutdownTimeoutMs = shutdownTimeoutMs ?? graceMs(config) + 2000;
    this.restartDelaysMs = restartDelaysMs.length ? restartDelaysMs : [0];
    this.current = null;
    this.starting = null;
    this.closed = false;
    this.crashes = 0;
    this.lastCrashAt = null;
    this.restarts = 0;
    this.lastExitCode = null;
    this.lastSignal = null;
    for (const platform of PLATFORMS) {
      const publish = platform === 'whatsapp' ? 'send' : 'post';
      this[platform] = {
        [publish]: (params, options) => this.callPlatform(`${platform}/${publish}`, params, options),
        validate: (params, options) => this.callPlatform(`${platform}/validate`, params, options),
        refresh: (params, options) => this.callPlatform(`${platform}/refresh`, params, options),
        // On existing posts; Unsupported where the platform's API has no such operation (`supports()` tells).
        delete: (params, options) => this.callPlatform(`${platform}/delete`, params, options),
        insights: (params, options) => this.callPlatform(`${platform}/insights`, params, options),
        status: (params, options) => this.callPlatform(`${platform}/status`, params, options),
      };
    }
  }

  /** Process id of the running sidecar, or null. */
  get pid() {
    return this.current && !this.current.exited ? this.current.child.pid : null;
  }

  /** The running process's initialize answer: {serverInfo, protocolVersion, capabilities}. */
  get initializeResult() {
    return this.current ? this.current.initializeResult : null;
  }

  /** True when the running binary lists `operation` for `platform` in its capabilities. */
  supports(platform, operation) {
    const platforms = this.initializeResult?.capabilities?.platforms || {};
    return Array.isArray(platforms[platform]) && platforms[platform].includes(operation);
  }

  /** Start now (otherwise the first request does); resolves with the initialize answer. */
  async start() {
    const current = await this.ensureRunning();
    return current.initializeResult;
  }

  /**
   * Send any request; `signal` (AbortSignal) or `timeoutMs` cancel it with $/cancelRequest.
   * @returns {Promise<any>} the result; rejects with a SidecarError subclass
   */
  async request(method, params, { signal, timeoutMs } = {}) {
    const limit = timeoutMs === undefined ? this.timeoutMs : timeoutMs;
    const current = await this.ensureRunning();
    return current.connection.request(method, params,
      { signal, timeoutMs: limit == null ? undefined : limit + this.answerGraceMs });
  }

  /**
   * A platform call: `timeoutMs` also goes to the sidecar as `deadlineMs`; `onProgress` gets its `$/progress`
   * values. Params are camelCase, as on the wire; a snake_case name is refused here, naming it.
   */
  async callPlatform(method, params = {}, { signal, timeoutMs, onProgress } = {}) {
    for (const key of Object.keys(params)) {
      if (key.includes('_')) {
        const camel = key.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
        throw new InvalidParams(`\`${key}\` is not a param of ${method}: this client spells it \`${camel}\``,
          { data: { kind: 'invalid_params', field: key, reason: `use ${camel}` }, method });
      }
    }
    const limit = timeoutMs === undefined ? this.timeoutMs : timeoutMs;
    const wire = { ...params };
    if (limit != null) wire.deadlineMs = Math.max(1, Math.round(limit));
    let token = null;
    if (typeof onProgress === 'function') {
      token = `node-${process.pid}-${this.nextProgressToken++}`;
      wire.workDoneToken = token;
      this.progress.set(token, onProgress);
    }
    try {
      return await this.request(method, wire, { signal, timeoutMs: limit });
    } finally {
      if (token !== null) this.progress.delete(token);
    }
  }

  /** Send a notification. */
  async notify(method, params) {
    const current = await this.ensureRunning();
    current.connection.notify(method, params);
  }

  health(options) { return this.request('health', undefined, options); }
  metricsSnapshot(options) { return this.request('metrics/snapshot', undefined, options); }
  async prometheus(options) { return (await this.request('metrics/prometheus', undefined, options)).text; }
  breakerStatus(options) { return this.request('breaker/status', undefined, options); }
  breakerReset(platform, options) { return this.request('breaker/reset', { platform }, options); }

  /** shutdown, exit, wait; then SIGTERM, then SIGKILL. Idempotent. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    if (this.starting) await this.starting.catch(() => {});
    const current = this.current;
    this.current = null;
    if (current) await this.stop(current, true);
  }

  async ensureRunning() {
    if (this.closed) throw new SidecarUnavailable('the sidecar client is closed');
    if (this.current && !this.current.connection.closed) return this.current;
    if (!this.starting) {
      this.starting = (async () => {
        if (this.current && this.current.closing) await this.current.closing;
        if (this.lastCrashAt !== null) {
          const wait = this.lastCrashAt + this.restartDelaysMs[Math.min(this.crashes, this.restartDelaysMs.length) - 1]
            - Date.now();
          if (wait > 0) await delay(wait);
        }
        const current = await this.spawnProcess();
        if (this.lastCrashAt !== null) this.restarts += 1;
        this.current = current;
        return current;
      })().finally(() => { this.starting = null; });
    }
    return this.starting;
  }

  recordCrash() {
    this.crashes += 1;
    this.lastCrashAt = Date.now();
  }

  async spawnProcess() {
    const binary = findBinary(this.binary);
    const child = spawn(binary, this.args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    try {
      await once(child, 'spawn');
    } catch (err) {
      this.recordCrash();
      throw new SidecarUnavailable(`cannot start ${binary}: ${err.message}`);
    }
    child.on('error', () => {}); // e.g. kill() on a process already gone; exits are handled on 'close'
    const handlers = {
      'credentials/resolve': (params, { signal }) => this.answerResolve(params, signal),
      'credentials/update': (params) => this.answerUpdate(params),
    };
    const current = {
      child, connection: new Connection(child.stdout, child.stdin, { handlers }), stderrTail: [],
      stopping: false, exited: false, initializeResult: null, startedAt: Date.now(),
    };
    current.connection.on('notification', (method, params) => this.onNotification(method, params));
    current.connection.on('close', (reason) => {
      if (current.exited || current.stopping) return;
      // Corrupt stdout: nothing it says can be trusted. Closed stdout: give it a moment to exit on its own.
      if (reason !== 'end of stream') child.kill('SIGKILL');
      else setTimeout(() => { if (!current.exited) child.kill('SIGKILL'); }, 2000).unref();
    });
    this.readStderr(current);
    current.closing = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        current.exited = true;
        this.lastExitCode = code;
        this.lastSignal = signal;
        current.connection.end('process exited');
        const fate = signal ? `killed by ${signal}` : `exited with code ${code}`;
        const tail = current.stderrTail.join(' | ');
        if (current.stopping) {
          current.connection.failPending((method) => new SidecarUnavailable('the sidecar was shut down', { method }));
        } else if (!current.initializeResult) {
          // A failed start: spawnProcess reports it (and counts it) from the failed initialize request.
          current.connection.failPending((method) => new SidecarUnavailable(`the sidecar ${fate}`, { method }));
        } else {
          if (Date.now() - current.startedAt >= 30000) this.crashes = 0;
          this.recordCrash();
          const reason = current.connection.closeReason;
          const message = `the sidecar (pid ${child.pid}) ${fate}${reason === 'process exited' ? '' : ` (${reason})`}`
            + `${tail ? `; last stderr: ${tail}` : ''}`;
          current.connection.failPending((method) => {
            const error = new SidecarCrashed(message, { method });
            error.outcomeUnknown = /\/(post|send)$/.test(method);
            return error;
          });
          this.emit('crash', new SidecarCrashed(message));
        }
        resolve();
      });
    });
    try {
      current.initializeResult = await current.connection.request('initialize',
        { clientInfo: this.clientInfo, config: this.config }, { timeoutMs: Math.max(this.shutdownTimeoutMs, 10000) });
      current.connection.notify('initialized', {});
    } catch (err) {
      await this.stop(current, false);
      if (err instanceof SidecarError && !(err instanceof SidecarUnavailable) && err.kind !== 'client_timeout') {
        throw err; // initialize answered with an error (a bad config): restarting will not help
      }
      this.recordCrash();
      const tail = current.stderrTail.join(' | ');
      throw new SidecarUnavailable(`the sidecar did not initialise: ${err.message}${tail ? `; last stderr: ${tail}` : ''}`);
    }
    return current;
  }

  async stop(current, polite) {
    current.stopping = true;
    const { child, connection } = current;
    if (polite && !current.exited && !connection.closed) {
      try {
        await connection.request('shutdown', undefined, { timeoutMs: this.shutdownTimeoutMs });
        connection.notify('exit');
      } catch {
        // not clean: escalate below
      }
    }
    child.stdin.end();
    const waitExit = async (ms) => {
      if (current.exited) return true;
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(false), ms); });
      try {
        return await Promise.race([current.closing.then(() => true), timeout]);
      } finally {
        clearTimeout(timer); // a pending timer would keep the parent alive for the whole timeout
      }
    };
    if (!(await waitExit(this.shutdownTimeoutMs))) {
      child.kill('SIGTERM');
      if (!(await waitExit(this.shutdownTimeoutMs))) {
        child.kill('SIGKILL');
        await current.closing;
      }
    }
    connection.failPending((method) => new SidecarUnavailable('the sidecar was shut down', { method }));
  }

  readStderr(current) {
    let pending = '';
    current.child.stderr.setEncoding('utf8');
    current.child.stderr.on('data', (text) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) this.onStderrLine(current, line);
    });
    current.child.stderr.on('end', () => { if (pending) this.onStderrLine(current, pending); });
  }

  onStderrLine(current, raw) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return;
    current.stderrTail.push(line.slice(0, 500));
    if (current.stderrTail.length > 20) current.stderrTail.shift();
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      entry = null;
    }
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) entry = { level: 'warn', msg: line };
    this.emit('log', entry);
  }

  onNotification(method, params) {
    if (method === '$/progress') this.deliverProgress(params);
    else if (method === 'metrics/event') this.emit('event', params);
    else if (method === 'breaker/stateChanged') this.emit('breakerChange', params);
    else if (method === '$/log') this.emit('log', params);
    else this.emit('notification', method, params);
  }

  deliverProgress(params) {
    const onProgress = params && this.progress.get(params.token);
    if (!onProgress) return;
    try {
      onProgress(params.value);
    } catch (err) {
      this.emit('log', { level: 'error', msg: 'onProgress threw', error: String(err) });
    }
  }

  async answerResolve(params, signal) {
    if (typeof this.resolveCredentials !== 'function') {
      throw new RemoteError(-31006, 'no resolveCredentials callback', { kind: 'credential_unavailable', retryable: false });
    }
    let credentials;
    try {
      credentials = await this.resolveCredentials(params, { signal });
    } catch (err) {
      // Only a CredentialError's message is meant for other processes; anything else is named, never quoted.
      if (err instanceof CredentialError) {
        throw new RemoteError(-31006, err.message, { kind: 'credential_unavailable', retryable: err.retryable });
      }
      throw new RemoteError(-31006, `the credential resolver threw ${(err && err.name) || typeof err}`,
        { kind: 'credential_unavailable', retryable: true });
    }
    if (!credentials || typeof credentials.accessToken !== 'string' || !credentials.accountId) {
      throw new RemoteError(-31006, 'resolved credentials need accessToken and accountId',
        { kind: 'credential_unavailable' });
    }
    return credentials;
  }

  async answerUpdate(params) {
    if (typeof this.onCredentialsUpdated === 'function') await this.onCredentialsUpdated(params);
    return {};
  }
}

module.exports = { Sidecar, findBinary, PLATFORMS };
