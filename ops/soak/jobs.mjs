// ops/soak/jobs.mjs - the client half of ops/soak/jobs, against a running
// `fenta serve` at BASE (h2c, prior knowledge):
//
//   node ops/soak/jobs.mjs BASE [RATE] [SECONDS]
//
// One organisation at its default running-jobs cap submits small jobs
// (input.text -> script.transform) at RATE runs a second for SECONDS, so most
// of them queue and every finished job wakes the queued ones; then waits
// until none is queued or running. A dead letter must always mean something
// an operator has to look at: the run fails when the dead-letter counter on
// /metrics moved, or when a job did not succeed. Prints one JSON object as
// the last line.
import { connect } from '../bench/lib.mjs';

const [base, rateArg = '20', secondsArg = '300'] = process.argv.slice(2);
const RATE = Number(rateArg), SECONDS = Number(secondsArg);
const c = connect(base);
const DEAD = 'fenta_messages_dead_lettered_total';

const doc = {
  name: 'soak', graph: {
    nodes: [{ id: 't', type: 'input.text', params: { text: 'Salt comes from rocks.' } },
      { id: 'u', type: 'script.transform', params: { op: 'uppercase' } }],
    edges: [{ from: 't.text', to: 'u.text' }],
  },
};

const s = await c.request('POST', '/v1/auth/register',
  { email: `soak-${Date.now()}@example.com`, password: 'a soak passphrase nobody guesses', name: 'Soak' });
c.setToken(s.access_token);
const wf = await c.request('POST', '/v1/workflows', doc);
const dead0 = await c.metric(DEAD);

let sent = 0, refused = 0;
const t0 = performance.now();
const pending = [];
while (performance.now() - t0 < SECONDS * 1000) {
  const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
  for (; sent < due; sent++)
    pending.push(c.request('POST', `/v1/workflows/${wf.id}/run`, { max_credits: 10 }).catch(() => { refused++; }));
  await new Promise((r) => setTimeout(r, 10));
}
await Promise.all(pending);
const submitS = (performance.now() - t0) / 1000;

// Drain: until nothing is queued or running (bounded).
const count = async (st) => {
  let n = 0, cursor = null;
  do {
    const page = await c.request('GET', `/v1/jobs?status=${st}&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    n += page.data.length;
    cursor = page.next_cursor;
  } while (cursor);
  return n;
};
let left = 1;
const drainUntil = performance.now() + 600_000;
while (performance.now() < drainUntil) {
  left = (await count('queued')) + (await count('running'));
  if (left === 0) break;
  await new Promise((r) => setTimeout(r, 1000));
}
// Wake-ups travel with their job's last commit: let the last ones land.
await new Promise((r) => setTimeout(r, 2000));
const succeeded = await count('succeeded');
const failed = await count('failed');
const dead = (await c.metric(DEAD)) - dead0;
const totalS = (performance.now() - t0) / 1000;
c.close();

const out = {
  soak: 'jobs', rate: RATE, seconds: SECONDS, submitted: sent - refused, refused,
  succeeded, failed, left, dead_letters: dead, submit_s: +submitS.toFixed(1), total_s: +totalS.toFixed(1),
};
console.log(`${out.submitted} jobs submitted at ${RATE}/s over ${out.submit_s} s; ${succeeded} succeeded, ${failed} failed, ${left} left; ${dead} dead letters`);
console.log(JSON.stringify(out));
process.exit(dead === 0 && failed === 0 && left === 0 && refused === 0 ? 0 : 1);
