/**
 * Requests to the Kubernetes API. Authentication and TLS come from
 * @kubernetes/client-node's KubeConfig (kubeconfig file, in-cluster service
 * account, exec plugins, client certificates); watches use its Watch class.
 * Every request, watches included, first takes a token from a client-side
 * rate limiter (QPS and burst, as client-go's).
 */
import http from 'node:http';
import https from 'node:https';
import { KubeConfig, Watch } from '@kubernetes/client-node';

export interface KubeClientOptions {
  /** A kubeconfig file; without it, in-cluster config when the service account is mounted, else the default kubeconfig. */
  kubeconfig?: string;
  /** A ready KubeConfig (tests); wins over `kubeconfig`. */
  config?: KubeConfig;
  qps: number;
  burst: number;
  /** Sent as User-Agent, so that API server audit logs (and test fixtures) tell nodes apart. */
  userAgent?: string;
}

/** A failed API request, with the Status object's reason and the HTTP code. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(`${method} ${path}: ${code} ${reason}: ${message}`);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: objects on the wire are free-form JSON
export type KubeObject = Record<string, any>;

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** QPS and burst: a token bucket. Callers wait their turn in order. */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly qps: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): Promise<void> {
    const turn = this.queue.then(async () => {
      this.refill();
      if (this.tokens < 1) {
        await new Promise((r) => setTimeout(r, ((1 - this.tokens) / this.qps) * 1000));
        this.refill();
      }
      this.tokens -= 1;
    });
    this.queue = turn;
    return turn;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }
}

export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault(); // KUBECONFIG, ~/.kube/config, then the in-cluster service account
  return kc;
}

export interface WatchHandle {
  abort(): void;
}

export class KubeClient {
  readonly config: KubeConfig;
  private readonly limiter: RateLimiter;
  private readonly watcher: Watch;
  readonly server: string;
  private readonly userAgent: string;
  requests = 0;

  constructor(options: KubeClientOptions) {
    this.config = options.config ?? loadKubeConfig(options.kubeconfig);
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig: no current cluster');
    this.server = cluster.server;
    this.limiter = new RateLimiter(options.qps, options.burst);
    this.watcher = new Watch(this.config);
    this.userAgent = options.userAgent ?? 'nodewarden';
  }

  async request(
    method: string,
    path: string,
    options: {
      query?: Record<string, string | undefined>;
      body?: unknown;
      contentType?: string;
      timeoutMs?: number;
    } = {},
  ): Promise<KubeObject> {
    await this.limiter.take();
    this.requests++;
    const url = new URL(this.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined && v !== '') url.searchParams.set(k, v);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const request: https.RequestOptions = {
      method,
      headers: {
        accept: 'application/json',
        'user-agent': this.userAgent,
        ...(body === undefined
          ? {}
          : {
              'content-type': options.contentType ?? 'application/json',
              'content-length': Buffer.byteLength(body),
            }),
      },
    };
    await this.config.applyToHTTPSOptions(request);
    const send = url.protocol === 'https:' ? https.request : http.request;
    const { code, text } = await new Promise<{ code: number; text: string }>((resolve, reject) => {
      const req = send(url, request, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      const timeout = options.timeoutMs ?? 30_000;
      req.setTimeout(timeout, () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${timeout} ms`)),
      );
      req.end(body);
    });
    let parsed: KubeObject | undefined;
    try {
      parsed = JSON.parse(text) as KubeObject;
    } catch {
      parsed = undefined;
    }
    if (code >= 400 || parsed === undefined) {
      throw new KubeApiError(
        method,
        path,
        code,
        parsed?.reason ?? 'Unknown',
        parsed?.message ?? (text.slice(0, 200) || 'not JSON'),
      );
    }
    return parsed;
  }

  /**
   * Starts a watch. `onEvent` gets each event; `onDone` once, with the error or
   * null when the server ended the stream. Aborting calls neither.
   */
  async watch(
    path: string,
    query: Record<string, string | undefined>,
    onEvent: (type: WatchEventType, object: KubeObject) => void,
    onDone: (err: (Error & { statusCode?: number }) | null) => void,
  ): Promise<WatchHandle> {
    await this.limiter.take();
    this.requests++;
    let aborted = false;
    const controller = await this.watcher.watch(
      path,
      query,
      (type: string, object: KubeObject) => {
        if (!aborted) onEvent(type as WatchEventType, object);
      },
      (err: unknown) => {
        if (!aborted) onDone((err as Error | null) ?? null);
        aborted = true;
      },
    );
    return {
      abort() {
        aborted = true;
        controller.abort();
      },
    };
  }
}
