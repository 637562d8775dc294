/**
 * Prometheus metrics, served on 127.0.0.1 by default. Counters that the
 * daemon sees (events, applies) are kept here; figures that live in the kernel
 * (per-rule packets, suppressed events) are read at scrape time.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly firewallEvents = new Counter({
    name: 'nodewarden_firewall_events_total',
    help: 'Drop and audit events reported by the host firewall',
    labelNames: ['direction', 'verdict', 'reason', 'policy'] as const,
    registers: [this.registry],
  });
  readonly policyApplies = new Counter({
    name: 'nodewarden_firewall_applies_total',
    help: 'Host policy applies, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly attachmentsFailed = new Gauge({
    name: 'nodewarden_attachments_failed',
    help: 'Programs that could not be attached to a device',
    registers: [this.registry],
  });
  readonly l2Frames = new Counter({
    name: 'nodewarden_l2_gratuitous_frames_total',
    help: 'Gratuitous ARP and unsolicited NA frames sent',
    labelNames: ['family'] as const,
    registers: [this.registry],
  });
  readonly l2Errors = new Counter({
    name: 'nodewarden_l2_errors_total',
    help: 'L2 announcement errors (map updates, sends, local routes)',
    registers: [this.registry],
  });
  private server: Server | undefined;
  /** Serves /healthz: 200 when `healthy`, else 503, with the checks as JSON. */
  health: (() => { healthy: boolean }) | undefined;

  /** A gauge whose values are read when Prometheus scrapes. */
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (set: (labels: Record<L, string>, value: number) => void) => void,
  ): void {
    const gauge: Gauge<L> = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        gauge.reset();
        read((labels, value) => gauge.set(labels, value));
      },
    });
  }

  /** Serves /metrics on host:port ("" turns it off). */
  async listen(address: string): Promise<string | undefined> {
    if (!address) return undefined;
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(at + 1));
    this.server = createServer((req, res) => {
      if (req.url === '/healthz' && this.health) {
        const health = this.health();
        res
          .writeHead(health.healthy ? 200 : 503, { 'Content-Type': 'application/json' })
          .end(`${JSON.stringify(health)}\n`);
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500).end(error.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const bound = this.server.address();
    return typeof bound === 'object' && bound ? `${bound.address}:${bound.port}` : address;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
