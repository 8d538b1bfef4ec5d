// ops/bench/jobs.mjs - the client half of ops/bench/jobs, against a running
// `fenta serve` at BASE (h2c, prior knowledge):
//
//   node ops/bench/jobs.mjs BASE [N_SMALL] [N_RENDERS] [PROFILE]
//
// 1. N_SMALL small jobs (input.text -> script.transform -> script.transform:
//    no rendering) submitted over one HTTP/2 connection with 64 requests in
//    flight; each job's latency is from sending its run request to its
//    "succeeded" status event on the organisation's SSE stream.
// 2. N_RENDERS 30 s shorts (script -> voice -> captions -> montage ->
//    export), all submitted at once, then the same number one after the other.
// Prints a table, then one JSON object as the last line.
import { connect } from './lib.mjs';

const [base, nSmallArg = '1000', nRenderArg = '8', profile = '1080p'] = process.argv.slice(2);
const N = Number(nSmallArg), R = Number(nRenderArg);
const client = connect(base);
const { session, request } = client;
let token = null;

// The organisation's event stream: calls onStatus(jobId, status, t) for every
// status event, from the moment it is open.
function events(onStatus) {
  return new Promise((resolve) => {
    const s = session.request({ ':path': '/v1/events', authorization: `Bearer ${token}`, accept: 'text/event-stream' });
    s.setEncoding('utf8');
    let buf = '';
    s.on('response', () => resolve(s));
    s.on('data', (d) => {
      buf += d;
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!frame.includes('event: status\n')) continue;
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (!data) continue;
        const d = JSON.parse(data.slice(6));
        onStatus(d.job_id, d.status, performance.now());
      }
    });
  });
}

const pct = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(xs.length * q))];
const r2 = (x) => Number(x.toFixed(2));

async function workflow(doc) {
  const w = await request('POST', '/v1/workflows', doc);
  if (!w.valid) throw new Error(`invalid workflow: ${JSON.stringify(w.problems)}`);
  return w.id;
}

async function main() {
  const s = await request('POST', '/v1/auth/register',
    { email: `bench-${Date.now()}@example.com`, password: 'a bench passphrase nobody guesses', name: 'Bench' });
  token = s.access_token;
  client.setToken(token);

  const done = new Map(), failed = new Set(), waiters = new Map();
  const stream = await events((id, status, t) => {
    if (status === 'succeeded') done.set(id, t);
    else if (status === 'failed' || status === 'cancelled') failed.add(id);
    else return;
    const w = waiters.get(id);
    if (w) { waiters.delete(id); w(); }
  });
  const finished = (id) => (done.has(id) || failed.has(id) ? Promise.resolve()
    : new Promise((res) => waiters.set(id, res)));

  // 1. Small jobs.
  const small = await workflow({
    name: 'small', graph: {
      nodes: [{ id: 't', type: 'input.text', params: { text: 'Salt comes from rocks.' } },
        { id: 'u', type: 'script.transform', params: { op: 'uppercase' } },
        { id: 'v', type: 'script.transform', params: { op: 'trim', max_words: 3 } }],
      edges: [{ from: 't.text', to: 'u.text' }, { from: 'u.text', to: 'v.text' }],
    },
  });
  // Warm up: a few jobs through every path before the clock starts.
  for (let i = 0; i < 5; i++) {
    const j = await request('POST', `/v1/workflows/${small}/run`, { max_credits: 10 });
    await finished(j.id);
  }
  const sent = new Map();
  const t0 = performance.now();
  let next = 0;
  const submitOne = async () => {
    while (next < N) {
      next++;
      const t = performance.now();
      const j = await request('POST', `/v1/workflows/${small}/run`, { max_credits: 10 });
      sent.set(j.id, t);
    }
  };
  await Promise.all(Array.from({ length: 64 }, submitOne));
  const tSubmitted = performance.now();
  await Promise.all([...sent.keys()].map(finished));
  const tDone = Math.max(...[...sent.keys()].map((id) => done.get(id) ?? performance.now()));
  const lat = [...sent.entries()].filter(([id]) => done.has(id))
    .map(([id, t]) => done.get(id) - t).sort((a, b) => a - b);
  const smallFailed = [...sent.keys()].filter((id) => failed.has(id)).length;
  const jobsPerS = N / ((tDone - t0) / 1000);
  console.log(`small jobs          ${N} submitted in ${((tSubmitted - t0) / 1000).toFixed(2)} s, all settled in ${((tDone - t0) / 1000).toFixed(2)} s (${smallFailed} failed)`);
  console.log(`  throughput        ${jobsPerS.toFixed(0)} jobs/s`);
  console.log(`  submit->succeeded p50 ${pct(lat, 0.5).toFixed(1)} ms  p90 ${pct(lat, 0.9).toFixed(1)} ms  p99 ${pct(lat, 0.99).toFixed(1)} ms  max ${lat[lat.length - 1].toFixed(1)} ms`);

  // 2. Renders: R at once, then R one after the other.
  const render = await workflow({
    name: 'render', graph: {
      nodes: [{ id: 'script', type: 'script.generate', params: { topic: 'why the ocean is salty', duration_s: 30 } },
        { id: 'voice', type: 'tts' },
        { id: 'subs', type: 'captions', params: { template: 'bold' } },
        { id: 'edit', type: 'montage', params: { template: 'bold', profile, duration_s: 30 } },
        { id: 'out', type: 'export' }],
      edges: [{ from: 'script.text', to: 'voice.text' }, { from: 'voice.words', to: 'subs.words' },
        { from: 'voice.audio', to: 'edit.audio' }, { from: 'voice.words', to: 'edit.words' },
        { from: 'subs.captions', to: 'edit.captions' }, { from: 'edit.timeline', to: 'out.timeline' }],
    },
  });
  const run = async (i) => {
    const j = await request('POST', `/v1/workflows/${render}/run`,
      { max_credits: 100, inputs: { script: { topic: `why the ocean is salty, part ${i}` } } });
    await finished(j.id);
    if (failed.has(j.id)) throw new Error(`render job ${j.id} failed`);
  };
  let t = performance.now();
  await Promise.all(Array.from({ length: R }, (_, i) => run(i)));
  const parallel = (performance.now() - t) / 1000;
  t = performance.now();
  for (let i = 0; i < R; i++) await run(R + i);
  const serial = (performance.now() - t) / 1000;
  if (R) console.log(`renders (${R} x 30 s ${profile}) all at once ${parallel.toFixed(1)} s, one after another ${serial.toFixed(1)} s (ratio ${(parallel / serial).toFixed(2)})`);

  stream.close();
  session.close();
  console.log(JSON.stringify({
    jobs_per_s: r2(jobsPerS), p50_ms: r2(pct(lat, 0.5)), p99_ms: r2(pct(lat, 0.99)),
    small_jobs: N, small_failed: smallFailed,
    renders_8_parallel_s: r2(parallel), renders_8_serial_s: r2(serial),
    parallel_to_serial: R ? r2(parallel / serial) : null,
  }));
}

main().catch((e) => { console.error(`bench failed: ${e.message}`); process.exit(1); });
