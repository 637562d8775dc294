/**
 * One list+watch loop for one resource, keeping a slim projection of each object.
 *
 * - List in pages, remember the list's resourceVersion, then watch from it with
 *   allowWatchBookmarks; bookmarks and events advance the version.
 * - A dropped watch resumes from the last version: no new list.
 * - 410 Gone (an ERROR event, or an HTTP 410) means the version was compacted:
 *   list again.
 * - No event and no bookmark for `idleTimeoutMs` means the watch is stalled (the
 *   connection can stay open and silent: client-node issues #364, #958, #1933,
 *   and client-node 1.4.0's Watch has no timeout of its own): abort and resume.
 * - Errors back off exponentially with jitter.
 * - An object that fails validation keeps its last good projection; the problem
 *   is recorded and reported once per resourceVersion.
 */
import type { InputProblem } from '../../../model/input-errors.js';
import type { KubeApiError, KubeClient, KubeObject, WatchEventType, WatchHandle } from './client.js';
import { sameProjection } from './same-projection.js';

export type Projection<T> = { ok: true; value: T } | { ok: false; problems: InputProblem[] } | { ok: 'skip' };

export interface ReflectorOptions<T> {
  /** Short name for status and logs, such as `services`. */
  name: string;
  client: KubeClient;
  /** Collection path, such as `/api/v1/services`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  project(object: KubeObject): Projection<T>;
  idleTimeoutMs: number;
  pageSize?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** The server ends a watch after this long (client-go picks 5–10 min at random). */
  watchTimeoutSeconds?: number;
  /**
   * Parts of a projection that consumers read apart from the rest, by name: each
   * has its own version (`facetVersion`), bumped only when that part changed.
   */
  facets?: Record<string, (value: T) => unknown>;
  /** Called after every list and every event, changed or not. */
  onChange?(): void;
  onInvalid?(object: KubeObject, problems: InputProblem[]): void;
  onValid?(object: KubeObject): void;
  onError?(error: Error): void;
}

export interface ReflectorStatus {
  name: string;
  synced: boolean;
  objects: number;
  invalid: number;
  resourceVersion: string;
  lists: number;
  watches: number;
  relists: number;
  idleTimeouts: number;
  lastError?: string;
  /** The resource type is not served (its CRD is not installed). */
  missing: boolean;
}

export const objectKeyOf = (o: KubeObject): string =>
  o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : String(o.metadata?.name);

export class Reflector<T> {
  readonly items = new Map<string, T>();
  readonly invalid = new Map<string, InputProblem[]>();
  private resourceVersion = '';
  private synced = false;
  private missing = false;
  private stopped = false;
  private handle: WatchHandle | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private generation = 0;
  private lastError: string | undefined;
  private readonly stats = { lists: 0, watches: 0, relists: 0, idleTimeouts: 0 };
  private syncWaiters: Array<() => void> = [];
  private changes = 0;
  private readonly facetChanges = new Map<string, number>();

  constructor(private readonly options: ReflectorOptions<T>) {}

  /**
   * Bumped whenever `items` or `invalid` changed: after each complete list, and
   * after each event whose projection (or problems) differs from the one kept.
   * Consumers compare versions instead of re-reading every item.
   */
  get version(): number {
    return this.changes;
  }

  /** Like `version`, for one of the facets named in the options. */
  facetVersion(name: string): number {
    return this.facetChanges.get(name) ?? 0;
  }

  /** The collection it lists and watches, such as `/api/v1/services`. */
  get path(): string {
    return this.options.path;
  }

  start(): void {
    this.stopped = false;
    void this.listThenWatch();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    this.handle?.abort();
    clearTimeout(this.idleTimer);
    clearTimeout(this.retryTimer);
  }

  /** Resolves after the first complete list. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  status(): ReflectorStatus {
    return {
      name: this.options.name,
      synced: this.synced,
      objects: this.items.size,
      invalid: this.invalid.size,
      resourceVersion: this.resourceVersion,
      ...this.stats,
      missing: this.missing,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private fail(error: Error): void {
    this.lastError = error.message;
    this.options.onError?.(error);
  }

  private retry(next: () => void): void {
    const base = this.options.backoffBaseMs ?? 200;
    const max = this.options.backoffMaxMs ?? 30_000;
    const ceiling = Math.min(max, base * 2 ** this.attempt);
    this.attempt++;
    // Half fixed, half random: spread reconnects of many nodes after an API server restart.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) next();
    }, delay);
  }

  /**
   * Projects one object into `items`/`invalid`. An invalid object keeps the
   * projection it had in `previous` (its last good version).
   */
  private project(
    object: KubeObject,
    items: Map<string, T>,
    invalid: Map<string, InputProblem[]>,
    previous: Map<string, T>,
  ): void {
    const key = objectKeyOf(object);
    const projected = this.options.project(object);
    if (projected.ok === true) {
      items.set(key, projected.value);
      invalid.delete(key);
      this.options.onValid?.(object);
    } else if (projected.ok === 'skip') {
      items.delete(key);
      invalid.delete(key);
    } else {
      const lastGood = previous.get(key);
      if (lastGood !== undefined) items.set(key, lastGood);
      invalid.set(key, projected.problems);
      this.options.onInvalid?.(object, projected.problems);
    }
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject): void {
    const key = objectKeyOf(object);
    const before = this.items.get(key);
    const problemsBefore = this.invalid.get(key);
    if (type === 'DELETED') {
      this.items.delete(key);
      this.invalid.delete(key);
    } else {
      this.project(object, this.items, this.invalid, this.items);
    }
    const after = this.items.get(key);
    if (sameProjection(before, after) && sameProjection(problemsBefore, this.invalid.get(key))) return;
    this.changes++;
    for (const [name, facet] of Object.entries(this.options.facets ?? {})) {
      const of = (v: T | undefined) => (v === undefined ? undefined : facet(v));
      if (!sameProjection(of(before), of(after))) this.bumpFacet(name);
    }
  }

  private bumpFacet(name: string): void {
    this.facetChanges.set(name, this.facetVersion(name) + 1);
  }

  private async listThenWatch(): Promise<void> {
    const generation = ++this.generation;
    const { client, path } = this.options;
    try {
      // Pages are projected as they arrive: whole objects never pile up, and
      // the result replaces the old state only once the list is complete.
      const items = new Map<string, T>();
      const invalid = new Map<string, InputProblem[]>();
      let cont: string | undefined;
      let rv = '';
      do {
        this.stats.lists++;
        const page = await client.request('GET', path, {
          query: {
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
            limit: String(this.options.pageSize ?? 500),
            continue: cont,
          },
        });
        if (generation !== this.generation) return;
        for (const item of page.items ?? []) this.project(item, items, invalid, this.items);
        cont = page.metadata?.continue || undefined;
        rv = page.metadata?.resourceVersion ?? '';
      } while (cont);
      this.missing = false;
      this.items.clear();
      for (const [k, v] of items) this.items.set(k, v);
      this.invalid.clear();
      for (const [k, v] of invalid) this.invalid.set(k, v);
      this.resourceVersion = rv;
      // A list replaces everything; lists are rare (start, 410 Gone), so no compare.
      this.changes++;
      for (const name of Object.keys(this.options.facets ?? {})) this.bumpFacet(name);
      this.markSynced();
      this.options.onChange?.();
      this.watch(generation);
    } catch (e) {
      if (generation !== this.generation) return;
      const err = e as KubeApiError;
      if (err.code === 404) {
        // The CRD is not installed: an empty set, and look again later.
        this.missing = true;
        this.markSynced();
      }
      this.fail(err);
      this.retry(() => void this.listThenWatch());
    }
  }

  private markSynced(): void {
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private relist(): void {
    this.stats.relists++;
    this.handle?.abort();
    void this.listThenWatch();
  }

  private armIdleTimer(generation: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (generation !== this.generation || this.stopped) return;
      this.stats.idleTimeouts++;
      this.fail(
        new Error(
          `${this.options.name}: no event or bookmark for ${this.options.idleTimeoutMs} ms; watching again`,
        ),
      );
      this.handle?.abort();
      this.watch(++this.generation);
    }, this.options.idleTimeoutMs);
  }

  private watch(generation: number): void {
    if (this.stopped) return;
    this.stats.watches++;
    const timeout = this.options.watchTimeoutSeconds ?? Math.round(300 + Math.random() * 300);
    this.armIdleTimer(generation);
    const started = performance.now();
    const onEvent = (type: WatchEventType, object: KubeObject) => {
      if (generation !== this.generation) return;
      this.armIdleTimer(generation);
      if (type === 'ERROR') {
        if (object?.code === 410) {
          this.relist();
        } else {
          this.fail(new Error(`${this.options.name}: watch error ${object?.code} ${object?.message}`));
          this.handle?.abort();
          const next = ++this.generation;
          this.retry(() => this.watch(next));
        }
        return;
      }
      if (object?.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
      this.attempt = 0;
      if (type === 'BOOKMARK') return;
      this.apply(type, object);
      this.options.onChange?.();
    };
    const onDone = (err: (Error & { statusCode?: number }) | null) => {
      if (generation !== this.generation || this.stopped) return;
      clearTimeout(this.idleTimer);
      if (err?.statusCode === 410) return this.relist();
      const next = ++this.generation;
      if (err) {
        this.fail(err);
        this.retry(() => this.watch(next));
      } else if (performance.now() - started < 1000) {
        // Ended at once: do not spin against a server that closes every watch.
        this.retry(() => this.watch(next));
      } else {
        // The server ended the stream (timeout, restart): resume from the last version.
        this.watch(next);
      }
    };
    this.options.client
      .watch(
        this.options.path,
        {
          allowWatchBookmarks: 'true',
          resourceVersion: this.resourceVersion,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          timeoutSeconds: String(timeout),
        },
        onEvent,
        onDone,
      )
      .then((handle) => {
        if (generation !== this.generation || this.stopped) handle.abort();
        else this.handle = handle;
      })
      .catch((e: Error) => onDone(e));
  }
}
