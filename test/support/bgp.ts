/** BGP speakers for tests and benchmarks: the real speaker on the native transport, with sockets in a lab namespace. */
import { type BgpLogger, BgpSpeaker, type SpeakerConfig } from '../../announcers/bgp/index.js';
import { NativeTcpTransport } from '../../bpf/tcp-socket.js';
import type { Host } from '../lab/index.js';

/** A logger that keeps every line, for assertions and for failure output. */
export class RecordingLogger implements BgpLogger {
  readonly lines: string[] = [];
  debug(): void {}
  info(o: object, m?: string): void {
    this.lines.push(`info ${m ?? ''} ${JSON.stringify(o)}`);
  }
  warn(o: object, m?: string): void {
    this.lines.push(`warn ${m ?? ''} ${JSON.stringify(o)}`);
  }
  error(o: object, m?: string): void {
    this.lines.push(`error ${m ?? ''} ${JSON.stringify(o)}`);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

/** A speaker whose TCP sockets live in `host`'s namespace. */
export function speakerIn(
  host: Host,
  config: SpeakerConfig,
  options: { restarting?: boolean; log?: BgpLogger } = {},
): BgpSpeaker {
  return new BgpSpeaker(config, {
    log: options.log ?? new RecordingLogger(),
    transport: new NativeTcpTransport({ netns: host.netns }),
    ...(options.restarting !== undefined ? { restarting: options.restarting } : {}),
  });
}
