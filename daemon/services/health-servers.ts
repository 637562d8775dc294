/**
 * The healthCheckNodePort servers: one HTTP server per planned port. A server
 * outlives endpoint changes (its answer is read per request), and closes when
 * its service goes away. A port that cannot be bound (kube-proxy or another
 * process holds it) is reported and retried; the other ports keep serving.
 */
import { createServer, type Server } from 'node:http';
import { type HealthPort, healthResponse } from '../../services/health-plan.js';
import type { Logger } from '../log.js';

export interface HealthPortStatus {
  port: number;
  service: string;
  localEndpoints: number;
  state: 'serving' | 'starting' | 'failed';
  /** The errno name and message of the last failed bind. */
  error?: string;
  since: string;
}

interface Entry {
  plan: HealthPort;
  server: Server | undefined;
  state: HealthPortStatus['state'];
  error?: string;
  since: string;
}

const RETRY_MS = 5_000;

export class HealthServers {
  private readonly entries = new Map<number, Entry>();
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bindAddress: string,
    private readonly log: Logger,
    /** serviceProxyHealthy in every answer. */
    private readonly proxyHealthy: () => boolean,
  ) {}

  /**
   * Makes the served ports match the plan. Answers change at once; the
   * promise resolves when every new port is bound or has failed.
   */
  apply(plan: readonly HealthPort[]): Promise<void> {
    const wanted = new Map(plan.map((p) => [p.port, p]));
    const pending: Promise<void>[] = [];
    for (const [port, entry] of this.entries) {
      if (wanted.has(port)) continue;
      this.entries.delete(port);
      closeServer(entry.server);
      this.log.info({ port, service: serviceName(entry.plan) }, 'healthCheckNodePort closed');
    }
    for (const [port, next] of wanted) {
      const entry = this.entries.get(port);
      if (entry) {
        entry.plan = next;
        if (entry.state === 'failed') pending.push(this.bind(entry));
        continue;
      }
      const fresh: Entry = {
        plan: next,
        server: undefined,
        state: 'starting',
        since: new Date().toISOString(),
      };
      this.entries.set(port, fresh);
      pending.push(this.bind(fresh));
    }
    this.armRetry();
    return Promise.all(pending).then(() => undefined);
  }

  private bind(entry: Entry): Promise<void> {
    const server = createServer((req, res) => {
      const answer = healthResponse(entry.plan, this.proxyHealthy());
      req.resume();
      res.writeHead(answer.status, answer.headers).end(answer.body);
    });
    // Health checkers reconnect often; never let idle keep-alives pile up.
    server.keepAliveTimeout = 5_000;
    entry.state = 'starting';
    return listen(server, entry.plan.port, this.bindAddress).then(
      () => {
        if (this.entries.get(entry.plan.port) !== entry) return closeServer(server);
        entry.server = server;
        entry.state = 'serving';
        entry.since = new Date().toISOString();
        delete entry.error;
        this.log.info(
          { port: entry.plan.port, service: serviceName(entry.plan) },
          'serving healthCheckNodePort',
        );
      },
      (error: NodeJS.ErrnoException) => {
        const message = `${error.code ?? 'error'}: ${error.message}`;
        if (entry.error !== message)
          this.log.error(
            { port: entry.plan.port, service: serviceName(entry.plan), err: message },
            error.code === 'EADDRINUSE'
              ? `cannot serve healthCheckNodePort ${entry.plan.port}: another process (kube-proxy?) holds it; retrying`
              : `cannot serve healthCheckNodePort ${entry.plan.port}; retrying`,
          );
        entry.state = 'failed';
        entry.error = message;
        entry.server = undefined;
        entry.since = new Date().toISOString();
      },
    );
  }

  private armRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setInterval(() => {
      for (const entry of this.entries.values()) if (entry.state === 'failed') void this.bind(entry);
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  status(): HealthPortStatus[] {
    return [...this.entries.values()]
      .map((e) => ({
        port: e.plan.port,
        service: serviceName(e.plan),
        localEndpoints: e.plan.localEndpoints,
        state: e.state,
        ...(e.error ? { error: e.error } : {}),
        since: e.since,
      }))
      .sort((a, b) => a.port - b.port);
  }

  close(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    for (const entry of this.entries.values()) closeServer(entry.server);
    this.entries.clear();
  }
}

const serviceName = (p: HealthPort) => `${p.namespace}/${p.name}`;

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      // A host without IPv6 cannot bind ::; IPv4 alone is the best it can do.
      if (host === '::' && error.code === 'EAFNOSUPPORT') {
        listen(server, port, '0.0.0.0').then(resolve, reject);
        return;
      }
      reject(error);
    };
    server.once('error', onError);
    server.listen({ port, host, ipv6Only: false }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server | undefined): void {
  if (!server) return;
  server.close();
  server.closeAllConnections();
}
