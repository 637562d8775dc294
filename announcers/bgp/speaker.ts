import { EventEmitter } from 'node:events';
import { NodeTransport } from './transport.js';
import type {
  PeerStatus,
  ReceivedRoute,
  Route,
  SpeakerConfig,
  SpeakerOptions,
  StopOptions,
  Transport,
} from './types.js';

/** Skeleton: the contract the daemon codes against; the sessions come next. */
export class BgpSpeaker extends EventEmitter {
  private config: SpeakerConfig;
  private readonly transport: Transport;
  private routes: Route[] = [];

  constructor(
    config: SpeakerConfig,
    private readonly options: SpeakerOptions,
  ) {
    super();
    this.config = config;
    this.transport = options.transport ?? new NodeTransport();
  }

  async start(): Promise<void> {
    this.options.log.info(
      { asn: this.config.asn, routerId: this.config.routerId, transport: typeof this.transport },
      'bgp speaker start',
    );
  }

  setRoutes(routes: Route[]): void {
    this.routes = routes;
  }

  reconfigure(config: SpeakerConfig): void {
    this.config = config;
  }

  peers(): PeerStatus[] {
    return this.config.peers.map((p) => ({
      address: p.address,
      asn: p.asn,
      state: 'Idle',
      prefixesSent: 0,
      prefixesReceived: 0,
      messagesSent: 0,
      messagesReceived: 0,
    }));
  }

  receivedRoutes(_peerAddress: string): ReceivedRoute[] {
    return [];
  }

  async stop(_o?: StopOptions): Promise<void> {
    this.routes = [];
  }
}
