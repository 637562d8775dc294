/**
 * A strict fixture of the Kubernetes API server, for tests and benchmarks only.
 *
 * A real kube-apiserver (with etcd) cannot be installed on the test machines,
 * so this server reproduces the parts of its HTTP/JSON behaviour that
 * nodewarden depends on, as the real server does them:
 *
 * - objects with apiVersion, kind and metadata (uid, resourceVersion, generation,
 *   creationTimestamp); one global resourceVersion counter, as etcd's revision;
 * - lists (`<Kind>List` with metadata.resourceVersion), `limit`/`continue` pages
 *   served from a consistent snapshot, `resourceVersionMatch=Exact`, and 410
 *   Gone with a Status for versions older than the compaction point;
 * - watches (`?watch=true`): newline-delimited WatchEvents ADDED, MODIFIED,
 *   DELETED, BOOKMARK (with `allowWatchBookmarks`) and ERROR (a Status with code
 *   410 when the requested resourceVersion was compacted), resume from a
 *   resourceVersion, objects moving in or out of a selector seen as ADDED or
 *   DELETED, and `timeoutSeconds`;
 * - label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors
 *   (metadata.name, metadata.namespace, and spec.nodeName for Pods);
 * - optimistic concurrency: a write that carries a stale resourceVersion gets
 *   409 Conflict; creating an existing name gets 409 AlreadyExists;
 * - the status subresource: PUT/PATCH on the object ignore `status`, and on
 *   `/status` change nothing but `status`; no-op updates keep the resourceVersion;
 * - merge patches (application/merge-patch+json; strategic merge patches are
 *   treated as merge patches, which is exact for the maps and scalars our
 *   objects use) and JSON patches;
 * - bearer-token authentication when a token is configured.
 *
 * Test hooks (methods, and the same under `/fixture/` over HTTP for a fixture in
 * another process): compact the event history, drop every watch connection,
 * stall watches silently (the connection stays open and nothing more is sent),
 * fail chosen requests with 503, seed objects with their status, and request
 * counters per verb and resource.
 *
 * Not reproduced: OpenAPI validation of CRDs (nodewarden validates the objects
 * it reads itself), admission, finalizers, garbage collection, server-side
 * apply, protobuf, and TLS.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiVersionOf, FIXTURE_RESOURCES, type ResourceType } from './resources.js';
import {
  type FieldRequirement,
  matchesFieldSelector,
  matchesLabelSelector,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from './selectors.js';

// biome-ignore lint/suspicious/noExplicitAny: objects on the wire are free-form JSON
export type KubeObject = Record<string, any>;

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface StoredEvent {
  rv: number;
  type: WatchEventType;
  typeKey: string;
  object: KubeObject;
  /** The object before the change (MODIFIED, DELETED), for selector transitions and snapshots. */
  previous?: KubeObject;
}

interface WatchConnection {
  type: ResourceType;
  namespace?: string;
  labels: ReturnType<typeof parseLabelSelector>;
  fields: FieldRequirement[];
  res: ServerResponse;
  stalled: boolean;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

export interface FixtureOptions {
  host?: string;
  port?: number;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** How often watches with allowWatchBookmarks get a BOOKMARK. The real server sends one about every minute. */
  bookmarkIntervalMs?: number;
  /** Events kept for watch resumes; older ones are compacted, as etcd compacts its history. */
  historyLimit?: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: KubeObject,
  ) {
    super(message);
  }
}

export function statusObject(
  code: number,
  reason: string,
  message: string,
  details?: KubeObject,
): KubeObject {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

const typeKeyOf = (t: ResourceType) => (t.group ? `${t.plural}.${t.group}` : t.plural);
const objectKey = (namespace: string | undefined, name: string) =>
  namespace ? `${namespace}/${name}` : name;
const clone = <T>(v: T): T => structuredClone(v);
/** Built-in list items carry no apiVersion/kind on the wire; custom resources do. */
const isBuiltIn = (t: ResourceType) => t.group === '' || t.group.endsWith('.k8s.io');

function withoutMetaAndStatus(o: KubeObject): KubeObject {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const out: KubeObject =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as KubeObject) }
      : {};
  for (const [k, v] of Object.entries(patch as KubeObject)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test). */
function jsonPatch(target: KubeObject, ops: KubeObject[]): KubeObject {
  const doc = clone(target);
  for (const op of ops) {
    const parts = String(op.path)
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = parts.pop();
    if (last === undefined) throw new ApiError(422, 'Invalid', `json patch: bad path ${op.path}`);
    let parent: KubeObject = doc;
    for (const p of parts) {
      parent = parent?.[p];
      if (parent === undefined || parent === null)
        throw new ApiError(422, 'Invalid', `json patch: missing ${op.path}`);
    }
    const index = Array.isArray(parent) ? (last === '-' ? parent.length : Number(last)) : last;
    switch (op.op) {
      case 'add':
        if (Array.isArray(parent)) parent.splice(index as number, 0, op.value);
        else parent[last] = op.value;
        break;
      case 'replace':
        if (!(index in parent)) throw new ApiError(422, 'Invalid', `json patch: missing ${op.path}`);
        parent[index as string] = op.value;
        break;
      case 'remove':
        if (!(index in parent)) throw new ApiError(422, 'Invalid', `json patch: missing ${op.path}`);
        if (Array.isArray(parent)) parent.splice(index as number, 1);
        else delete parent[last];
        break;
      case 'test':
        if (!sameJson(parent[index as string], op.value))
          throw new ApiError(422, 'Invalid', `json patch: test failed at ${op.path}`);
        break;
      default:
        throw new ApiError(422, 'Invalid', `json patch: unsupported op ${op.op}`);
    }
  }
  return doc;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export class FixtureApiServer {
  private readonly server: Server;
  private readonly types = new Map<string, ResourceType>();
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private events: StoredEvent[] = [];
  private revision = 1;
  /** Events with rv <= compactedRevision are gone. */
  private compactedRevision = 1;
  private readonly watches = new Set<WatchConnection>();
  private readonly counts = new Map<string, number>();
  private failing: ((method: string, path: string, userAgent: string) => boolean) | undefined;
  private readonly options: Required<Omit<FixtureOptions, 'token'>> & { token?: string };
  url = '';

  constructor(options: FixtureOptions = {}) {
    this.options = {
      host: '127.0.0.1',
      port: 0,
      bookmarkIntervalMs: 1000,
      historyLimit: 100_000,
      ...options,
    };
    for (const t of FIXTURE_RESOURCES) {
      this.types.set(typeKeyOf(t), t);
      this.store.set(typeKeyOf(t), new Map());
    }
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', String(err));
        this.sendStatus(res, e);
      });
    });
    // Node's 5 s default races clients that reuse idle connections (ECONNRESET); Go's server keeps them longer.
    this.server.keepAliveTimeout = 90_000;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(this.options.port, this.options.host, resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://${this.options.host}:${port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- test hooks ----------------------------------------------------------

  get resourceVersion(): string {
    return String(this.revision);
  }

  /** Forgets the event history up to now: resuming a watch from an older version gets 410 Gone. */
  compact(): void {
    this.compactedRevision = this.revision;
    this.events = [];
  }

  /** Ends every watch connection, as a restarting API server or a proxy idle timeout does. */
  dropWatches(): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) this.closeWatch(w, true);
    return n;
  }

  /** Existing watches stay open but receive nothing more, not even bookmarks. */
  stallWatches(): number {
    for (const w of this.watches) w.stalled = true;
    return this.watches.size;
  }

  /** Requests that match get 503 ServiceUnavailable (a partition between one client and the server); undefined heals it. */
  failRequests(filter: ((method: string, path: string, userAgent: string) => boolean) | undefined): void {
    this.failing = filter;
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Requests by `verb resource`, such as `list services`, `update leases.coordination.k8s.io`. */
  requestCount(verb: string, resource: string): number {
    return this.counts.get(`${verb} ${resource}`) ?? 0;
  }

  /** create, update, patch and delete requests on a resource, or on all resources. */
  writeCount(resource?: string): number {
    let n = 0;
    for (const [key, count] of this.counts) {
      const [verb, res] = key.split(' ');
      if (!['create', 'update', 'patch', 'delete'].includes(verb!)) continue;
      if (resource === undefined || res === resource) n += count;
    }
    return n;
  }

  counters(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  resetCounters(): void {
    this.counts.clear();
  }

  // ---- direct store access (same semantics as HTTP, not counted) -----------

  typeFor(apiVersion: string, kind: string): ResourceType {
    const t = FIXTURE_RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
    if (!t) throw new ApiError(404, 'NotFound', `no resource for ${apiVersion} ${kind}`);
    return t;
  }

  /** Creates an object; with a status subresource the status given here is kept (as a seed). */
  create(object: KubeObject): KubeObject {
    const type = this.typeFor(object.apiVersion, object.kind);
    return this.doCreate(type, object.metadata?.namespace, object, { keepStatus: true });
  }

  get(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined {
    const type = this.typeFor(apiVersion, kind);
    const o = this.store.get(typeKeyOf(type))!.get(objectKey(namespace, name));
    return o ? clone(o) : undefined;
  }

  /** Replaces an object, status included; checks resourceVersion when the object carries one. */
  replace(object: KubeObject): KubeObject {
    const type = this.typeFor(object.apiVersion, object.kind);
    return this.doUpdate(type, object.metadata?.namespace, object.metadata?.name, object, 'all');
  }

  delete(apiVersion: string, kind: string, name: string, namespace?: string): void {
    this.doDelete(this.typeFor(apiVersion, kind), namespace, name, undefined);
  }

  list(apiVersion: string, kind: string): KubeObject[] {
    return [...this.store.get(typeKeyOf(this.typeFor(apiVersion, kind)))!.values()].map(clone);
  }

  // ---- HTTP ----------------------------------------------------------------

  private count(verb: string, type: ResourceType): void {
    const key = `${verb} ${typeKeyOf(type)}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  private sendJson(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendStatus(res: ServerResponse, e: ApiError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.sendJson(res, e.code, statusObject(e.code, e.reason, e.message, e.details));
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(400, 'BadRequest', 'the request body is not JSON');
    }
  }

  private route(pathname: string): Route {
    const segs = pathname
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 2) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 3) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${pathname})`);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    const type = FIXTURE_RESOURCES.find(
      (t) => t.group === group && t.version === version && t.plural === plural,
    );
    if (!type || extra.length > 0) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${pathname})`);
    }
    if (namespace !== undefined && !type.namespaced) {
      throw new ApiError(404, 'NotFound', `${type.plural} is not namespaced`);
    }
    if (subresource !== undefined && (subresource !== 'status' || !type.statusSubresource)) {
      throw new ApiError(404, 'NotFound', `${typeKeyOf(type)} has no subresource ${subresource}`);
    }
    return { type, namespace, name, subresource };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fixture');
    if (url.pathname.startsWith('/fixture/')) return this.handleHook(url, req, res);
    if (this.options.token !== undefined && req.headers.authorization !== `Bearer ${this.options.token}`) {
      throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    }
    if (this.failing?.(req.method ?? 'GET', url.pathname, String(req.headers['user-agent'] ?? ''))) {
      throw new ApiError(503, 'ServiceUnavailable', 'the fixture was told to fail this request');
    }
    const route = this.route(url.pathname);
    const q = url.searchParams;
    const { type, namespace, name, subresource } = route;
    switch (req.method) {
      case 'GET':
        if (name === undefined) {
          if (q.get('watch') === 'true' || q.get('watch') === '1') {
            this.count('watch', type);
            return this.startWatch(type, namespace, q, res);
          }
          this.count('list', type);
          return this.sendJson(res, 200, this.listResponse(type, namespace, q));
        }
        this.count('get', type);
        return this.sendJson(res, 200, this.getOrThrow(type, namespace, name));
      case 'POST': {
        if (name !== undefined) throw new ApiError(405, 'MethodNotAllowed', 'POST on a named object');
        this.count('create', type);
        const body = (await this.readBody(req)) as KubeObject;
        return this.sendJson(res, 201, this.doCreate(type, namespace, body, { keepStatus: false }));
      }
      case 'PUT': {
        if (name === undefined) throw new ApiError(405, 'MethodNotAllowed', 'PUT on a collection');
        this.count('update', type);
        const body = (await this.readBody(req)) as KubeObject;
        const scope = subresource === 'status' ? 'status' : type.statusSubresource ? 'main' : 'all';
        return this.sendJson(res, 200, this.doUpdate(type, namespace, name, body, scope));
      }
      case 'PATCH': {
        if (name === undefined) throw new ApiError(405, 'MethodNotAllowed', 'PATCH on a collection');
        this.count('patch', type);
        const body = await this.readBody(req);
        const current = this.getOrThrow(type, namespace, name);
        const contentType = String(req.headers['content-type'] ?? '')
          .split(';')[0]!
          .trim();
        let patched: KubeObject;
        if (contentType === 'application/json-patch+json') {
          if (!Array.isArray(body)) throw new ApiError(400, 'BadRequest', 'a JSON patch must be an array');
          patched = jsonPatch(current, body as KubeObject[]);
        } else if (
          contentType === 'application/merge-patch+json' ||
          contentType === 'application/strategic-merge-patch+json'
        ) {
          patched = mergePatch(current, body) as KubeObject;
        } else {
          throw new ApiError(415, 'UnsupportedMediaType', `the patch type ${contentType} is not supported`);
        }
        // A patch that names no resourceVersion applies to the current object.
        const patchRv = (body as KubeObject | undefined)?.metadata?.resourceVersion;
        if (!Array.isArray(body) && patchRv === undefined)
          patched.metadata.resourceVersion = current.metadata.resourceVersion;
        const scope = subresource === 'status' ? 'status' : type.statusSubresource ? 'main' : 'all';
        return this.sendJson(res, 200, this.doUpdate(type, namespace, name, patched, scope));
      }
      case 'DELETE': {
        if (name === undefined) throw new ApiError(405, 'MethodNotAllowed', 'DELETE on a collection');
        this.count('delete', type);
        const body = (await this.readBody(req)) as KubeObject | undefined;
        const deleted = this.doDelete(type, namespace, name, body?.preconditions?.resourceVersion);
        return this.sendJson(res, 200, deleted);
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `method ${req.method} is not allowed`);
    }
  }

  private async handleHook(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hooks: Record<string, (body: unknown) => unknown> = {
      '/fixture/compact': () => {
        this.compact();
        return { resourceVersion: this.resourceVersion };
      },
      '/fixture/drop-watches': () => ({ dropped: this.dropWatches() }),
      '/fixture/stall-watches': () => ({ stalled: this.stallWatches() }),
      '/fixture/counters': () => this.counters(),
      '/fixture/reset-counters': () => {
        this.resetCounters();
        return {};
      },
      // Objects with their status (Nodes with addresses), as the cluster's own controllers would have written them.
      '/fixture/seed': (body) => ({ created: (body as KubeObject[]).map((o) => this.create(o)).length }),
    };
    const hook = hooks[url.pathname];
    if (!hook) throw new ApiError(404, 'NotFound', `no fixture hook ${url.pathname}`);
    this.sendJson(res, 200, hook(await this.readBody(req)));
  }

  private getOrThrow(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    if (type.namespaced && namespace === undefined) {
      throw new ApiError(404, 'NotFound', `${typeKeyOf(type)} is namespaced: name a namespace`);
    }
    const o = this.store.get(typeKeyOf(type))!.get(objectKey(namespace, name));
    if (!o) throw this.notFound(type, name);
    return clone(o);
  }

  private notFound(type: ResourceType, name: string): ApiError {
    return new ApiError(404, 'NotFound', `${typeKeyOf(type)} "${name}" not found`, {
      name,
      group: type.group,
      kind: type.plural,
    });
  }

  private conflict(type: ResourceType, name: string): ApiError {
    return new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${typeKeyOf(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: type.group, kind: type.plural },
    );
  }

  private checkKind(type: ResourceType, body: KubeObject): void {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError(400, 'BadRequest', 'the request body must be an object');
    }
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(type)) {
      throw new ApiError(
        400,
        'BadRequest',
        `apiVersion ${body.apiVersion} does not match ${apiVersionOf(type)}`,
      );
    }
    if (body.kind !== undefined && body.kind !== type.kind) {
      throw new ApiError(400, 'BadRequest', `kind ${body.kind} does not match ${type.kind}`);
    }
  }

  private record(type: ResourceType, event: Omit<StoredEvent, 'typeKey'>): void {
    const stored: StoredEvent = { ...event, typeKey: typeKeyOf(type) };
    this.events.push(stored);
    if (this.events.length > this.options.historyLimit) {
      const dropped = this.events.splice(0, this.events.length - this.options.historyLimit);
      this.compactedRevision = dropped.at(-1)!.rv;
    }
    for (const w of this.watches) if (w.type === type) this.deliver(w, stored);
  }

  private doCreate(
    type: ResourceType,
    namespace: string | undefined,
    body: KubeObject,
    { keepStatus }: { keepStatus: boolean },
  ): KubeObject {
    this.checkKind(type, body);
    const meta = { ...(body.metadata ?? {}) };
    if (meta.name === undefined && typeof meta.generateName === 'string') {
      meta.name = meta.generateName + randomUUID().slice(0, 5);
    }
    if (typeof meta.name !== 'string' || meta.name === '') {
      throw new ApiError(
        422,
        'Invalid',
        `${type.kind} is invalid: metadata.name: Required value: name or generateName is required`,
      );
    }
    const ns = type.namespaced ? (namespace ?? meta.namespace) : undefined;
    if (type.namespaced && !ns)
      throw new ApiError(422, 'Invalid', `${type.kind} is invalid: metadata.namespace: Required value`);
    if (namespace !== undefined && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw new ApiError(
        400,
        'BadRequest',
        'the namespace of the object does not match the namespace of the request',
      );
    }
    const objects = this.store.get(typeKeyOf(type))!;
    const key = objectKey(ns, meta.name);
    if (objects.has(key)) {
      throw new ApiError(409, 'AlreadyExists', `${typeKeyOf(type)} "${meta.name}" already exists`, {
        name: meta.name,
        group: type.group,
        kind: type.plural,
      });
    }
    this.revision++;
    const object: KubeObject = {
      ...clone(body),
      apiVersion: apiVersionOf(type),
      kind: type.kind,
      metadata: {
        ...clone(meta),
        ...(ns ? { namespace: ns } : {}),
        uid: randomUUID(),
        resourceVersion: String(this.revision),
        generation: 1,
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    };
    delete object.metadata.generateName;
    if (type.statusSubresource && !keepStatus) delete object.status;
    objects.set(key, object);
    this.record(type, { rv: this.revision, type: 'ADDED', object: clone(object) });
    return clone(object);
  }

  /** scope: 'main' keeps the stored status, 'status' keeps everything but status, 'all' takes both. */
  private doUpdate(
    type: ResourceType,
    namespace: string | undefined,
    name: string | undefined,
    body: KubeObject,
    scope: 'main' | 'status' | 'all',
  ): KubeObject {
    this.checkKind(type, body);
    if (name === undefined) throw new ApiError(422, 'Invalid', 'metadata.name: Required value');
    if (body.metadata?.name !== undefined && body.metadata.name !== name) {
      throw new ApiError(
        400,
        'BadRequest',
        `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const ns = type.namespaced ? (namespace ?? body.metadata?.namespace) : undefined;
    const objects = this.store.get(typeKeyOf(type))!;
    const key = objectKey(ns, name);
    const current = objects.get(key);
    if (!current) throw this.notFound(type, name);
    const rv = body.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion)
      throw this.conflict(type, name);

    let next: KubeObject;
    if (scope === 'status') {
      next = { ...clone(current), ...(body.status === undefined ? {} : { status: clone(body.status) }) };
      if (body.status === undefined) delete next.status;
    } else {
      next = { ...clone(body), apiVersion: apiVersionOf(type), kind: type.kind };
      if (scope === 'main') {
        if (current.status === undefined) delete next.status;
        else next.status = clone(current.status);
      }
      // Server-owned metadata never comes from the client.
      const { uid, creationTimestamp, generation, resourceVersion: _rv } = current.metadata;
      next.metadata = {
        ...clone(body.metadata ?? {}),
        name,
        ...(ns ? { namespace: ns } : {}),
        uid,
        creationTimestamp,
        generation,
      };
    }
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    if (sameJson(next, current)) return clone(current);
    if (!sameJson(withoutMetaAndStatus(next), withoutMetaAndStatus(current))) {
      next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    }
    this.revision++;
    next.metadata.resourceVersion = String(this.revision);
    objects.set(key, next);
    this.record(type, { rv: this.revision, type: 'MODIFIED', object: clone(next), previous: clone(current) });
    return clone(next);
  }

  private doDelete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    preconditionRv: string | undefined,
  ): KubeObject {
    const objects = this.store.get(typeKeyOf(type))!;
    const key = objectKey(type.namespaced ? namespace : undefined, name);
    const current = objects.get(key);
    if (!current) throw this.notFound(type, name);
    if (preconditionRv !== undefined && preconditionRv !== current.metadata.resourceVersion) {
      throw this.conflict(type, name);
    }
    objects.delete(key);
    this.revision++;
    const gone = clone(current);
    gone.metadata.resourceVersion = String(this.revision);
    this.record(type, { rv: this.revision, type: 'DELETED', object: gone, previous: clone(current) });
    return clone(gone);
  }

  // ---- lists ---------------------------------------------------------------

  private parseSelectors(type: ResourceType, q: URLSearchParams) {
    try {
      const supported = [
        'metadata.name',
        'metadata.namespace',
        ...(type.kind === 'Pod' ? ['spec.nodeName'] : []),
      ];
      return {
        labels: parseLabelSelector(q.get('labelSelector') ?? ''),
        fields: parseFieldSelector(q.get('fieldSelector') ?? '', supported),
      };
    } catch (e) {
      if (e instanceof SelectorError) throw new ApiError(400, 'BadRequest', e.message);
      throw e;
    }
  }

  /** The objects of a type as they were at revision `at` (>= the compaction point), undoing later events. */
  private snapshotAt(type: ResourceType, at: number): Map<string, KubeObject> {
    const tk = typeKeyOf(type);
    const snapshot = new Map(this.store.get(tk)!);
    for (let i = this.events.length - 1; i >= 0 && this.events[i]!.rv > at; i--) {
      const e = this.events[i]!;
      if (e.typeKey !== tk) continue;
      const key = objectKey(e.object.metadata.namespace, e.object.metadata.name);
      if (e.type === 'ADDED') snapshot.delete(key);
      else snapshot.set(key, e.previous!);
    }
    return snapshot;
  }

  private expired(message: string): ApiError {
    return new ApiError(410, 'Expired', message);
  }

  private listResponse(type: ResourceType, namespace: string | undefined, q: URLSearchParams): KubeObject {
    const { labels, fields } = this.parseSelectors(type, q);
    const limit = Number(q.get('limit') ?? '0');
    const token = q.get('continue');
    let at = this.revision;
    let after = '';
    if (token) {
      try {
        const decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
          rv: number;
          start: string;
        };
        at = decoded.rv;
        after = decoded.start;
      } catch {
        throw new ApiError(400, 'BadRequest', 'continue key is not valid');
      }
      if (at < this.compactedRevision) {
        throw this.expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      }
    } else {
      const rvParam = q.get('resourceVersion');
      const match = q.get('resourceVersionMatch');
      if (match === 'Exact') {
        const rv = Number(rvParam);
        if (!Number.isInteger(rv) || rv <= 0)
          throw new ApiError(400, 'BadRequest', 'resourceVersionMatch=Exact needs a resourceVersion');
        if (rv < this.compactedRevision)
          throw this.expired(`too old resource version: ${rv} (${this.compactedRevision})`);
        if (rv > this.revision)
          throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${this.revision}`);
        at = rv;
      } else if (match !== null && match !== 'NotOlderThan') {
        throw new ApiError(400, 'BadRequest', `unsupported resourceVersionMatch ${match}`);
      }
      // Without Exact, any resourceVersion means "not older than": the latest state serves it.
    }
    const source = at === this.revision ? this.store.get(typeKeyOf(type))! : this.snapshotAt(type, at);
    const keys = [...source.keys()].sort();
    const items: KubeObject[] = [];
    let nextStart: string | undefined;
    let remaining = 0;
    for (const key of keys) {
      if (after && key <= after) continue;
      const o = source.get(key)!;
      if (namespace !== undefined && o.metadata.namespace !== namespace) continue;
      if (!matchesLabelSelector(labels, o.metadata.labels) || !matchesFieldSelector(fields, o)) continue;
      if (limit > 0 && items.length === limit) {
        remaining++;
        continue;
      }
      items.push(o);
      if (limit > 0 && items.length === limit) nextStart = key;
    }
    const strip = isBuiltIn(type);
    return {
      kind: `${type.kind}List`,
      apiVersion: apiVersionOf(type),
      metadata: {
        resourceVersion: String(at),
        ...(nextStart !== undefined && remaining > 0
          ? {
              continue: Buffer.from(JSON.stringify({ rv: at, start: nextStart })).toString('base64url'),
              remainingItemCount: remaining,
            }
          : {}),
      },
      items: items.map((o) => {
        if (!strip) return o;
        const { apiVersion: _a, kind: _k, ...rest } = o;
        return rest;
      }),
    };
  }

  // ---- watches -------------------------------------------------------------

  private matches(w: WatchConnection, o: KubeObject | undefined): boolean {
    if (!o) return false;
    if (w.namespace !== undefined && o.metadata.namespace !== w.namespace) return false;
    return matchesLabelSelector(w.labels, o.metadata.labels) && matchesFieldSelector(w.fields, o);
  }

  private write(w: WatchConnection, event: KubeObject): void {
    if (w.stalled || w.res.destroyed) return;
    w.res.write(`${JSON.stringify(event)}\n`);
  }

  private deliver(w: WatchConnection, e: StoredEvent): void {
    const now = this.matches(w, e.object);
    const before = e.type === 'MODIFIED' && this.matches(w, e.previous);
    if (e.type === 'DELETED') {
      if (this.matches(w, e.previous)) this.write(w, { type: 'DELETED', object: e.object });
    } else if (e.type === 'ADDED') {
      if (now) this.write(w, { type: 'ADDED', object: e.object });
    } else if (now && before) {
      this.write(w, { type: 'MODIFIED', object: e.object });
    } else if (now) {
      this.write(w, { type: 'ADDED', object: e.object });
    } else if (before) {
      // Left the selector: the watcher sees it go, with the version of the change.
      const gone = clone(e.previous!);
      gone.metadata.resourceVersion = e.object.metadata.resourceVersion;
      this.write(w, { type: 'DELETED', object: gone });
    }
  }

  private closeWatch(w: WatchConnection, destroy: boolean): void {
    for (const t of w.timers) clearTimeout(t);
    this.watches.delete(w);
    if (destroy) w.res.destroy();
    else w.res.end();
  }

  private startWatch(
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
    res: ServerResponse,
  ): void {
    const { labels, fields } = this.parseSelectors(type, q);
    const w: WatchConnection = {
      type,
      namespace,
      labels,
      fields,
      res,
      stalled: false,
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      timers: [],
    };
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const rvParam = q.get('resourceVersion');
    const from = rvParam === null || rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      this.write(w, {
        type: 'ERROR',
        object: statusObject(400, 'BadRequest', `invalid resourceVersion ${rvParam}`),
      });
      res.end();
      return;
    }
    if (from !== undefined && from < this.compactedRevision) {
      // The real server answers 200 and sends the 410 as an ERROR event.
      this.write(w, {
        type: 'ERROR',
        object: statusObject(410, 'Expired', `too old resource version: ${from} (${this.compactedRevision})`),
      });
      res.end();
      return;
    }
    this.watches.add(w);
    res.on('close', () => this.closeWatch(w, false));
    if (from === undefined) {
      // No version: the current state as ADDED events, then changes.
      const objects = [...this.store.get(typeKeyOf(type))!.values()].sort(
        (a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion),
      );
      for (const o of objects) if (this.matches(w, o)) this.write(w, { type: 'ADDED', object: o });
    } else {
      for (const e of this.events) if (e.rv > from && e.typeKey === typeKeyOf(type)) this.deliver(w, e);
    }
    if (w.bookmarks) {
      const tick = () => {
        this.write(w, {
          type: 'BOOKMARK',
          object: {
            kind: type.kind,
            apiVersion: apiVersionOf(type),
            metadata: { resourceVersion: this.resourceVersion },
          },
        });
        w.timers[0] = setTimeout(tick, this.options.bookmarkIntervalMs);
      };
      w.timers[0] = setTimeout(tick, this.options.bookmarkIntervalMs);
    }
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) w.timers[1] = setTimeout(() => this.closeWatch(w, false), timeout * 1000);
  }
}
