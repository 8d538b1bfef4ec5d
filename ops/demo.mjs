// ops/demo.mjs - the API client half of ops/demo: what an API client of Fenta
// does to get a short, against a running `fenta serve` at BASE.
//
//   node ops/demo.mjs BASE OUT_DIR [TOPIC]
//
// Registers a demo user, saves examples/workflow-short.json as a workflow,
// estimates it for TOPIC, runs it with that estimate, follows the job's
// Server-Sent Events with a progress bar, downloads the mp4, srt and
// thumbnail through their presigned URLs into OUT_DIR, and prints their paths
// and the per-stage timings. Exits non-zero, with the API's error, when any
// step fails. Uses only Node's standard library (fetch, fs).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, outDir, topic = 'why the ocean is salty'] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node ops/demo.mjs BASE_URL OUT_DIR [TOPIC]');
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tty = process.stdout.isTTY;
let token = null;

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(base + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON: reported below */ }
  if (!r.ok) {
    const e = json && json.error ? `${json.error.code}: ${json.error.message}` : text;
    throw new Error(`${method} ${path} -> ${r.status} ${e}`);
  }
  return json;
}

function step(msg) { console.log(`\n== ${msg}`); }

// On a terminal one line redrawn in place; in a log, a line per change of
// what is happening (progress ticks alone would flood it).
let lastLabel = null;
function bar(progress, label) {
  const width = 30, done = Math.round((progress / 100) * width);
  const line = `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${progress.toFixed(0).padStart(3)}%  ${label}`;
  if (tty) process.stdout.write(`\r${line.padEnd(78)}`);
  else if (label !== lastLabel) console.log(line);
  lastLabel = label;
}

// Follows GET /v1/jobs/{id}/events until the stream ends (it does after the
// job's final event), reconnecting with Last-Event-ID if it drops.
async function follow(jobId) {
  let lastId = null, final = null, progress = 0, label = 'queued';
  for (let attempt = 0; !final && attempt < 20; attempt++) {
    const headers = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    if (lastId) headers['last-event-id'] = lastId;
    const r = await fetch(`${base}/v1/jobs/${jobId}/events`, { headers });
    if (!r.ok) throw new Error(`events -> ${r.status} ${await r.text()}`);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body) {
      buf += decoder.decode(chunk, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev = { event: 'message', data: '' };
        for (const line of frame.split('\n')) {
          if (line.startsWith('id:')) ev.id = line.slice(3).trim();
          else if (line.startsWith('event:')) ev.event = line.slice(6).trim();
          else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
        }
        if (ev.id) lastId = ev.id;
        if (!ev.data) continue; // a heartbeat comment
        const d = JSON.parse(ev.data);
        if (ev.event === 'progress') progress = d.progress;
        else if (ev.event === 'node.started') label = `${d.node} started`;
        else if (ev.event === 'stage.started') label = `${d.node}: ${d.stage}`;
        else if (ev.event === 'stage.finished') label = `${d.node}: ${d.stage} done in ${d.seconds.toFixed(1)} s`;
        else if (ev.event === 'node.finished') label = `${d.node} ${d.status}`;
        else if (ev.event === 'status') {
          label = d.status;
          if (['succeeded', 'failed', 'cancelled'].includes(d.status)) final = d.status;
        } else if (ev.event === 'completed') { progress = 100; label = 'completed'; }
        bar(progress, label);
      }
    }
  }
  if (tty) process.stdout.write('\n');
  return final;
}

async function download(url, file) {
  const r = await fetch(base + url);
  if (!r.ok) throw new Error(`GET ${url} -> ${r.status}`);
  writeFileSync(file, Buffer.from(await r.arrayBuffer()));
}

try {
  step(`Fenta at ${base}`);
  const email = `demo-${Date.now()}@example.com`;
  const session = await api('POST', '/v1/auth/register', {
    email, password: 'a demo passphrase nobody guesses', name: 'Demo',
  });
  token = session.access_token;
  console.log(`registered ${email}`);

  step('workflow (examples/workflow-short.json)');
  const doc = JSON.parse(readFileSync(join(root, 'examples/workflow-short.json'), 'utf8'));
  const wf = await api('POST', '/v1/workflows', doc);
  console.log(`workflow ${wf.id} version ${wf.version}: ${wf.graph.nodes.map((n) => n.id).join(' -> ')}`);
  if (!wf.valid) throw new Error(`workflow is not valid: ${JSON.stringify(wf.problems)}`);

  step(`estimate for the topic "${topic}"`);
  const inputs = { script: { topic }, footage: { query: topic } };
  const est = await api('POST', `/v1/workflows/${wf.id}/estimate`, { inputs });
  for (const n of est.nodes) console.log(`  ${n.id.padEnd(8)} ${n.type.padEnd(16)} ${n.credits} credits`);
  console.log(`  total ${est.total} credits (estimate ${est.id})`);

  step('run');
  const job = await api('POST', `/v1/workflows/${wf.id}/run`, { estimate_id: est.id });
  console.log(`job ${job.id} ${job.status}`);
  const t0 = Date.now();
  const final = await follow(job.id);
  const done = await api('GET', `/v1/jobs/${job.id}`);
  console.log(`job ${done.status} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (done.status !== 'succeeded')
    throw new Error(`job ${final || done.status}: ${JSON.stringify(done.error)}`);

  step('stage timings');
  const order = ['ingest', 'script', 'tts', 'align', 'edit', 'export', 'deliver'];
  for (const id of wf.graph.nodes.map((g) => g.id)) {
    const n = done.nodes[id];
    const stages = Object.entries(n.stages || {})
      .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
    if (!stages.length) {
      console.log(`  ${id.padEnd(8)} ${n.type.padEnd(16)} ${(n.seconds ?? 0).toFixed(2)} s`);
      continue;
    }
    for (const [s, v] of stages)
      console.log(`  ${id.padEnd(8)} ${`${n.type}/${s}`.padEnd(16)} ${(v.seconds ?? 0).toFixed(2)} s${v.skipped ? ' (skipped)' : ''}`);
  }

  step(`outputs (presigned URLs, downloaded to ${outDir})`);
  mkdirSync(outDir, { recursive: true });
  for (const a of done.artifacts) {
    if (a.name === 'render.json') continue;
    const file = resolve(outDir, a.name);
    await download(a.url, file);
    console.log(`  ${file}  (${a.content_type}, ${a.bytes} bytes)`);
  }
} catch (e) {
  console.error(`\ndemo failed: ${e.message}`);
  process.exit(1);
}
