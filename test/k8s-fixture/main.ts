/**
 * Runs the fixture API server as a process of its own (inside a lab namespace,
 * or beside a benchmark whose memory it must not inflate). Prints
 * `fixture API server listening on <url>` when ready; stops on SIGTERM.
 *
 *   tsx test/k8s-fixture/main.ts [--host 127.0.0.1] [--port 0] [--token T] [--bookmark-ms 1000]
 */
import { parseArgs } from 'node:util';
import { FixtureApiServer } from './server.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    token: { type: 'string' },
    'bookmark-ms': { type: 'string', default: '1000' },
  },
});

const api = new FixtureApiServer({
  host: values.host,
  port: Number(values.port),
  bookmarkIntervalMs: Number(values['bookmark-ms']),
  ...(values.token ? { token: values.token } : {}),
});
const url = await api.start();
console.log(`fixture API server listening on ${url}`);
process.on('SIGTERM', () => {
  void api.stop().then(() => process.exit(0));
});
