#!/usr/bin/env node
// Peer benchmark for Fenta's runtime bench: N no-op jobs through BullMQ.
//
// usage: node bench.mjs --port PORT [--jobs 50000] [--concurrency N]
//                       [--host 127.0.0.1] [--timeout 300]
//
// Connects to redis on HOST:PORT, obliterates the bench queue, starts one
// Worker with the given concurrency and a no-op async processor, enqueues the
// jobs with addBulk in chunks of 1000 (removeOnComplete: true), and measures
// wall time from the first add to the last 'completed' event. Prints exactly
// one JSON line on stdout:
//   {"jobs":50000,"concurrency":N,"seconds":S,"jobs_per_s":R}
// Diagnostics go to stderr. Exits non-zero on error or after --timeout s.

import { Queue, Worker } from 'bullmq';

const QUEUE = 'fenta-bench-noop';
const CHUNK = 1000;

function usage(msg) {
  if (msg) console.error(`bench.mjs: ${msg}`);
  console.error('usage: node bench.mjs --port PORT [--jobs 50000] [--concurrency N] [--host 127.0.0.1] [--timeout 300]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: null, jobs: 50000, concurrency: 1, timeout: 300 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const key = eq >= 0 ? a.slice(0, eq) : a;
    const val = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (key === '-h' || key === '--help') usage();
    if (val === undefined) usage(`missing value for ${key}`);
    switch (key) {
      case '--host': opts.host = val; break;
      case '--port': opts.port = Number(val); break;
      case '--jobs': opts.jobs = Number(val); break;
      case '--concurrency': opts.concurrency = Number(val); break;
      case '--timeout': opts.timeout = Number(val); break;
      default: usage(`unknown option ${key}`);
    }
  }
  const posInt = (n) => Number.isInteger(n) && n > 0;
  if (!posInt(opts.port) || opts.port > 65535) usage('--port must be 1..65535');
  if (!posInt(opts.jobs)) usage('--jobs must be a positive integer');
  if (!posInt(opts.concurrency)) usage('--concurrency must be a positive integer');
  if (!(opts.timeout > 0)) usage('--timeout must be > 0');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
let completed = 0;
let queue;
let worker;

// Hard timeout: whatever hangs (redis gone, lost jobs), we exit non-zero.
const hardTimer = setTimeout(() => {
  console.error(`bench.mjs: timed out after ${opts.timeout} s (${completed}/${opts.jobs} jobs completed)`);
  process.exit(3);
}, opts.timeout * 1000);

const connection = {
  host: opts.host,
  port: opts.port,
  maxRetriesPerRequest: null, // required by BullMQ workers
  connectTimeout: 5000,
};

async function main() {
  queue = new Queue(QUEUE, { connection });
  queue.on('error', (err) => console.error(`bench.mjs: queue error: ${err.message}`));
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });

  let resolveDone;
  let rejectDone;
  const done = new Promise((res, rej) => { resolveDone = res; rejectDone = rej; });

  worker = new Worker(QUEUE, async () => {}, {
    connection,
    concurrency: opts.concurrency,
    autorun: false,
  });
  worker.on('error', (err) => console.error(`bench.mjs: worker error: ${err.message}`));
  worker.on('failed', (job, err) => rejectDone(new Error(`job ${job?.id} failed: ${err?.message}`)));
  let t1 = 0;
  worker.on('completed', () => {
    if (++completed === opts.jobs) {
      t1 = performance.now();
      resolveDone();
    }
  });
  await worker.waitUntilReady();

  const jobOpts = { removeOnComplete: true, removeOnFail: true };
  const t0 = performance.now();
  const running = worker.run(); // resolves when the worker is closed
  running.catch((err) => rejectDone(err));

  for (let i = 0; i < opts.jobs; i += CHUNK) {
    const n = Math.min(CHUNK, opts.jobs - i);
    const batch = new Array(n);
    for (let k = 0; k < n; k++) batch[k] = { name: 'noop', data: { i: i + k }, opts: jobOpts };
    await queue.addBulk(batch);
  }

  await done;
  const seconds = (t1 - t0) / 1000;

  await worker.close();
  await running.catch(() => {});
  await queue.close();

  clearTimeout(hardTimer);
  process.stdout.write(JSON.stringify({
    jobs: opts.jobs,
    concurrency: opts.concurrency,
    seconds: Number(seconds.toFixed(3)),
    jobs_per_s: Number((opts.jobs / seconds).toFixed(1)),
  }) + '\n');
}

main().then(
  () => {
    // Everything is closed, so node should exit on its own; make sure of it.
    setTimeout(() => process.exit(0), 2000).unref();
  },
  (err) => {
    console.error(`bench.mjs: ${err?.stack || err}`);
    process.exit(1);
  },
);
