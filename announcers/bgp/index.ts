export { BgpSpeaker } from './speaker.js';
export { NodeTransport, TransportUnsupportedError } from './transport.js';
export type {
  BgpLogger,
  Family,
  PeerConfig,
  PeerState,
  PeerStatus,
  ReceivedRoute,
  Route,
  SpeakerConfig,
  SpeakerOptions,
  StopOptions,
  Transport,
} from './types.js';
