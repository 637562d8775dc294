/**
 * Reads a BPF ring buffer without ever blocking the event loop: a timer drains
 * whatever is ready with ring_buffer__consume (which never sleeps) and hands
 * each sample to the callback on the main thread.
 */
import { BpfError } from './native/errors.js';
import { bpf, lastErrno, type Ptr, registerRingBufferCallback } from './native/ffi.js';
import type { BpfMapInfo } from './object.js';

export interface RingBufferReaderOptions {
  /** How often to drain, in ms. Bounded latency; the ring absorbs bursts in between. */
  intervalMs?: number;
}

export class RingBufferReader {
  private readonly handle: Ptr;
  private readonly callback: { pointer: unknown; release(): void };
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly map: Pick<BpfMapInfo, 'name' | 'fd'>,
    onSample: (data: Buffer) => void,
    private readonly options: RingBufferReaderOptions = {},
  ) {
    this.callback = registerRingBufferCallback(onSample);
    const handle = bpf.ringBufferNew(map.fd, this.callback.pointer, 0n, null);
    if (!handle) {
      const errno = lastErrno();
      this.callback.release();
      throw new BpfError('open ring buffer', map.name, errno || 22);
    }
    this.handle = handle;
  }

  /** Drains everything that is ready now; returns the number of samples. */
  drain(): number {
    if (this.closed) return 0;
    const result = bpf.ringBufferConsume(this.handle);
    if (result < 0) throw new BpfError('consume ring buffer', this.map.name, -result);
    return result;
  }

  start(onError: (error: unknown) => void = () => {}): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      try {
        this.drain();
      } catch (error) {
        onError(error);
      }
    }, this.options.intervalMs ?? 20);
  }

  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.closed = true;
    bpf.ringBufferFree(this.handle);
    this.callback.release();
  }
}
