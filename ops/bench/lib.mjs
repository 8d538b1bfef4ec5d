// ops/bench/lib.mjs - what the bench and soak clients share: one HTTP/2
// (h2c, prior knowledge) session to a running `fenta serve`, JSON requests
// with the session's bearer token, and the Prometheus counters it serves.
import http2 from 'node:http2';

// connect(base) -> { request(method, path, body), raw(method, path, body),
// setToken(t), metric(name), close(), session }. raw resolves with
// {status, text} whatever the status; request resolves with the parsed JSON body and rejects on a
// status >= 300; metric sums every series of a counter on /metrics.
export function connect(base) {
  const session = http2.connect(base);
  session.on('error', (e) => { console.error(`http2: ${e.message}`); process.exit(1); });
  let token = null;

  function raw(method, path, body) {
    return new Promise((resolve, reject) => {
      const headers = { ':method': method, ':path': path };
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const s = session.request(headers);
      let status = 0, text = '';
      s.on('response', (h) => { status = h[':status']; });
      s.setEncoding('utf8');
      s.on('data', (d) => { text += d; });
      s.on('end', () => resolve({ status, text }));
      s.on('error', reject);
      s.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  async function request(method, path, body) {
    const { status, text } = await raw(method, path, body);
    if (status >= 300) throw new Error(`${method} ${path} -> ${status} ${text}`);
    try { return JSON.parse(text); } catch { return null; }
  }

  async function metric(name) {
    const { text } = await raw('GET', '/metrics');
    let sum = 0;
    for (const line of text.split('\n'))
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
    return sum;
  }

  return { request, raw, metric, setToken: (t) => { token = t; }, close: () => session.close(), session };
}
