// tests/support/webhook_receiver.mjs - a webhook receiver for Fenta's tests: it
// verifies deliveries with the `standardwebhooks` package, as a real consumer
// would, records them, and answers as each endpoint is configured to (ok,
// fail, hang, retry_after), so tests can drive Fenta's delivery and retries.
//
//   node tests/support/webhook_receiver.mjs [--port N] [--no-log-bodies]
//
// Listens on 127.0.0.1:N (0, the default, picks a free port), prints exactly
// one line `listening <port>` to stdout when ready and nothing to stdout after
// it (errors go to stderr). Exits on SIGTERM, SIGINT, or when its stdin (a
// pipe or a terminal) reaches end of file, so a test process that dies without
// stopping it does not leave it running. Uses only node:http (HTTP/1.1,
// keep-alive). tests/support/webhook_receiver.c is its C fixture.
//
// Endpoints (NAME matches [A-Za-z0-9_-]+):
//   POST   /hooks/NAME    a delivery: verified with NAME's secrets, recorded,
//                         then answered per NAME's config.
//   PUT    /_config/NAME  replaces NAME's config and resets its fail counter
//                         -> 204. Body: {"secrets":["whsec_..."], "mode":
//                         "ok"|"fail"|"hang"|"retry_after", "fail_times":N,
//                         "status":N, "retry_after":"2", "delay_ms":N}.
//   PATCH  /_config/NAME  merges into it; keeps the counter unless fail_times
//                         is given -> 204.
//   GET    /_log/NAME[?since=K]  the records from index K on, arrival order.
//   DELETE /_log/NAME     clears NAME's log and its counts in /_stats -> 204.
//   GET    /_stats        {"NAME":{"received","unique_ids","duplicates"}}.
//   GET    /healthz       200.
//
// Modes: "ok" answers 200 {"ok":true}; "fail" answers `status` (default 500)
// {"error":"configured to fail"} for the first `fail_times` POSTs (default
// -1: all of them) then as "ok"; "retry_after" answers `status` (429 or 503,
// default 429) with `Retry-After: <retry_after>` (default "1") for the first
// `fail_times` (default 1) then as "ok"; "hang" records and never answers.
// Every mode waits `delay_ms` before answering. The fail counter counts every
// POST to the endpoint, verified or not.
//
// A record: {webhook_id, webhook_timestamp, webhook_signature, verified,
// verify_error, type, body, raw, received_at_ms, answered}; answered is the
// status sent, null while not answered (always for hang, or when the client
// left first). With --no-log-bodies (for benches) webhook_signature, type,
// body and raw are null, to keep the per-delivery memory small.
//
// Verification: a delivery is verified when ANY of the endpoint's secrets
// (several during a rotation) verifies it with the package's default 5-minute
// timestamp tolerance; verify_error is the package's message for the last
// secret tried, "no secret" when none is configured, or "payload is not JSON:
// ..." when the signature matched but the body does not parse (the package
// parses it, and a consumer would reject it). Deduplication in /_stats is by
// webhook-id; deliveries without one count as received only.
import { createServer } from 'node:http';
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';

// The npm packages of the test tools are installed once, by ops/setup, in
// ops/node (its package.json is their manifest), not beside this file: a
// bare `import 'standardwebhooks'` would look in tests/support/node_modules
// and ESM ignores NODE_PATH, so the package is resolved from that manifest.
const requireTool = createRequire(new URL('../../ops/node/package.json', import.meta.url));
const { Webhook } = requireTool('standardwebhooks');

const MAX_BODY = 16 * 1024 * 1024;
const NAME_RE = /^\/(hooks|_config|_log)\/([A-Za-z0-9_-]+)$/;
const MODES = new Set(['ok', 'fail', 'hang', 'retry_after']);
const CONFIG_KEYS = new Set(['secrets', 'mode', 'fail_times', 'status', 'retry_after', 'delay_ms']);

function usage(msg) {
  process.stderr.write(`webhook_receiver: ${msg}\n` +
    'usage: node tests/support/webhook_receiver.mjs [--port N] [--no-log-bodies]\n');
  process.exit(2);
}

let port = 0;
let logBodies = true;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--port' && i + 1 < argv.length && /^\d+$/.test(argv[i + 1])) {
    port = Number(argv[++i]);
  } else if (argv[i] === '--no-log-bodies') {
    logBodies = false;
  } else {
    usage(`unknown argument ${argv[i]}`);
  }
}
if (port > 65535) usage('port out of range');

// One endpoint's state: its config (as given), the Webhook verifiers built
// from its secrets (decoded once, not per delivery), the fail counter, the
// log and the dedup counts.
const endpoints = new Map();

function endpoint(name) {
  let e = endpoints.get(name);
  if (!e) {
    e = {
      config: {}, verifiers: [], seen: 0, log: [],
      received: 0, ids: new Set(), duplicates: 0,
    };
    endpoints.set(name, e);
  }
  return e;
}

class BadRequest extends Error {}

const isInt = (v) => Number.isInteger(v);

// Checks a config object; returns the verifiers for its secrets. Throws
// BadRequest on anything a test most likely mistyped.
function checkConfig(c) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) {
    throw new BadRequest('config must be a JSON object');
  }
  for (const k of Object.keys(c)) {
    if (!CONFIG_KEYS.has(k)) throw new BadRequest(`unknown config key ${k}`);
  }
  if (c.mode !== undefined && !MODES.has(c.mode)) throw new BadRequest(`unknown mode ${c.mode}`);
  if (c.fail_times !== undefined && !(isInt(c.fail_times) && c.fail_times >= -1)) {
    throw new BadRequest('fail_times must be an integer >= -1');
  }
  if (c.status !== undefined && !(isInt(c.status) && c.status >= 100 && c.status <= 599)) {
    throw new BadRequest('status must be an HTTP status');
  }
  if (c.retry_after !== undefined && typeof c.retry_after !== 'string') {
    throw new BadRequest('retry_after must be a string');
  }
  if (c.delay_ms !== undefined && !(typeof c.delay_ms === 'number' && c.delay_ms >= 0)) {
    throw new BadRequest('delay_ms must be a number >= 0');
  }
  if (c.secrets === undefined) return [];
  if (!Array.isArray(c.secrets) || !c.secrets.every((s) => typeof s === 'string')) {
    throw new BadRequest('secrets must be an array of strings');
  }
  return c.secrets.map((s) => {
    try {
      return new Webhook(s);
    } catch (err) {
      throw new BadRequest(`bad secret: ${err.message}`);
    }
  });
}

function verify(e, raw, headers) {
  if (e.verifiers.length === 0) return { verified: false, error: 'no secret', body: undefined };
  let error = null;
  for (const wh of e.verifiers) {
    try {
      return { verified: true, error: null, body: wh.verify(raw, headers) };
    } catch (err) {
      error = err instanceof SyntaxError ? `payload is not JSON: ${err.message}` : err.message;
    }
  }
  return { verified: false, error, body: undefined };
}

function parseJson(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

const header = (v) => (v === undefined ? null : v);

function send(res, status, body, extra) {
  const headers = extra || {};
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(body);
  } else {
    headers['content-length'] = 0;
  }
  res.writeHead(status, headers);
  res.end(body);
}

const sendJson = (res, status, v) => send(res, status, JSON.stringify(v));
const sendError = (res, status, msg) => sendJson(res, status, { error: msg });

function deliver(name, req, res, raw) {
  const e = endpoint(name);
  const h = req.headers;
  const v = verify(e, raw, h);
  let body = null;
  if (logBodies) body = v.verified ? (v.body === undefined ? null : v.body) : parseJson(raw);
  const id = header(h['webhook-id']);
  const rec = {
    webhook_id: id,
    webhook_timestamp: header(h['webhook-timestamp']),
    webhook_signature: logBodies ? header(h['webhook-signature']) : null,
    verified: v.verified,
    verify_error: v.error,
    type: body !== null && typeof body === 'object' && typeof body.type === 'string' ? body.type : null,
    body,
    raw: logBodies ? raw : null,
    received_at_ms: Date.now(),
    answered: null,
  };
  e.log.push(rec);
  e.received++;
  if (id !== null) {
    if (e.ids.has(id)) e.duplicates++;
    else e.ids.add(id);
  }
  e.seen++;

  const c = e.config;
  const mode = c.mode || 'ok';
  if (mode === 'hang') return; // the socket stays open until the client leaves
  let status = 200;
  let out = '{"ok":true}';
  let extra;
  if (mode === 'fail') {
    const times = c.fail_times === undefined ? -1 : c.fail_times;
    if (times === -1 || e.seen <= times) {
      status = c.status || 500;
      out = '{"error":"configured to fail"}';
    }
  } else if (mode === 'retry_after') {
    const times = c.fail_times === undefined ? 1 : c.fail_times;
    if (times === -1 || e.seen <= times) {
      status = c.status || 429;
      out = JSON.stringify({ error: 'retry later' });
      extra = { 'retry-after': c.retry_after === undefined ? '1' : c.retry_after };
    }
  }
  const answer = () => {
    if (res.destroyed || req.socket.destroyed) return; // the client left: nothing answered
    rec.answered = status;
    send(res, status, out, extra);
  };
  if (c.delay_ms > 0) setTimeout(answer, c.delay_ms);
  else answer();
}

function configure(name, req, res, raw, replace) {
  let c;
  try {
    c = JSON.parse(raw);
  } catch (err) {
    return sendError(res, 400, `config is not JSON: ${err.message}`);
  }
  const e = endpoint(name);
  const merged = replace ? c : { ...e.config, ...c };
  let verifiers;
  try {
    checkConfig(c);
    verifiers = checkConfig(merged);
  } catch (err) {
    if (err instanceof BadRequest) return sendError(res, 400, err.message);
    throw err;
  }
  e.config = merged;
  e.verifiers = verifiers;
  if (replace || c.fail_times !== undefined) e.seen = 0;
  return send(res, 204);
}

function stats() {
  const out = {};
  for (const [name, e] of endpoints) {
    out[name] = { received: e.received, unique_ids: e.ids.size, duplicates: e.duplicates };
  }
  return out;
}

function route(req, res, raw) {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const m = NAME_RE.exec(path);
  const method = req.method;
  if (m) {
    const [, kind, name] = m;
    if (kind === 'hooks') {
      if (method === 'POST') return deliver(name, req, res, raw);
    } else if (kind === '_config') {
      if (method === 'PUT' || method === 'PATCH') {
        return configure(name, req, res, raw, method === 'PUT');
      }
    } else if (method === 'GET') {
      const log = endpoints.get(name)?.log || [];
      const since = q < 0 ? null : new URLSearchParams(req.url.slice(q + 1)).get('since');
      if (since !== null && !/^\d+$/.test(since)) return sendError(res, 400, 'since must be an index');
      return sendJson(res, 200, since === null ? log : log.slice(Number(since)));
    } else if (method === 'DELETE') {
      const e = endpoints.get(name);
      if (e) {
        e.log = [];
        e.received = 0;
        e.ids = new Set();
        e.duplicates = 0;
      }
      return send(res, 204);
    }
    return sendError(res, 405, 'method not allowed');
  }
  if (path === '/_stats' && method === 'GET') return sendJson(res, 200, stats());
  if (path === '/healthz' && method === 'GET') return sendJson(res, 200, { ok: true });
  return sendError(res, 404, 'not found');
}

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (d) => {
    size += d.length;
    if (size > MAX_BODY) tooBig = true;
    else chunks.push(d);
  });
  req.on('end', () => {
    if (tooBig) return sendError(res, 413, 'body too large');
    const raw = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
    try {
      route(req, res, raw);
    } catch (err) {
      process.stderr.write(`webhook_receiver: ${req.method} ${req.url}: ${err.stack}\n`);
      if (!res.headersSent) sendError(res, 500, 'receiver error');
    }
  });
});

// Fenta's delivery client keeps connections; a hung request must stay hung
// until the client gives up, never be cut by Node's own timers.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 60_000;
server.requestTimeout = 0;
server.timeout = 0;

server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
});
server.on('error', (err) => {
  process.stderr.write(`webhook_receiver: ${err.message}\n`);
  process.exit(1);
});

// The one line on stdout; whoever started us may close its end after it.
process.stdout.on('error', () => {});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

// Stdin's end means whoever started us is gone. Only a pipe, a socket or a
// terminal is watched: /dev/null (a background job of a script) ends at once.
let stdinKind = null;
try {
  const st = fstatSync(0);
  if (st.isFIFO() || st.isSocket()) stdinKind = 'pipe';
  else if (process.stdin.isTTY) stdinKind = 'tty';
} catch {
  stdinKind = null; // no stdin at all: nothing to watch
}
if (stdinKind) {
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
}
