import { describe, expect, it } from 'vitest';
import { BgpMessageError } from '../../../announcers/bgp/codec/errors.js';
import type { OpenMessage } from '../../../announcers/bgp/codec/open.js';
import {
  type FsmAction,
  type FsmConfig,
  LARGE_HOLD_TIME,
  negotiate,
  PeerFsm,
} from '../../../announcers/bgp/fsm.js';

const LOCAL_ID = 0x0a000001; // 10.0.0.1

function config(over: Partial<FsmConfig> = {}): FsmConfig {
  return {
    localAsn: 65001,
    localId: LOCAL_ID,
    peerAsn: 65002,
    holdTime: 90,
    connectRetryTime: 5,
    passive: false,
    families: ['ipv4-unicast', 'ipv6-unicast'],
    random: () => 0,
    ...over,
  };
}

function openFrom(over: Partial<OpenMessage> = {}, caps: OpenMessage['capabilities'] = {}): OpenMessage {
  return {
    type: 'open',
    version: 4,
    myAs: 65002,
    holdTime: 30,
    bgpId: 0x0a000002,
    capabilities: {
      families: ['ipv4-unicast', 'ipv6-unicast'],
      fourOctetAs: 65002,
      routeRefresh: true,
      ...caps,
    },
    ...over,
  };
}

const of = <T extends FsmAction['type']>(actions: FsmAction[], type: T) =>
  actions.filter((a): a is Extract<FsmAction, { type: T }> => a.type === type);

/** Drives an active peer to Established on connection 1; returns the FSM. */
function established(over: Partial<FsmConfig> = {}, open = openFrom()): PeerFsm {
  const fsm = new PeerFsm(config(over));
  fsm.handle({ type: 'start' });
  fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
  fsm.handle({ type: 'message', conn: 1, message: open });
  fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } });
  expect(fsm.state).toBe('Established');
  return fsm;
}

describe('start and handshake', { timeout: 60_000 }, () => {
  it('an active peer connects at once and bounds the attempt with the connect-retry timer', () => {
    const fsm = new PeerFsm(config());
    const actions = fsm.handle({ type: 'start' });
    expect(actions).toEqual([
      { type: 'connect', conn: 1 },
      { type: 'startTimer', timer: 'connectRetry', seconds: 5 },
      { type: 'state', from: 'Idle', to: 'Connect' },
    ]);
  });

  it('a passive peer waits in Active without connecting', () => {
    const fsm = new PeerFsm(config({ passive: true }));
    expect(fsm.handle({ type: 'start' })).toEqual([{ type: 'state', from: 'Idle', to: 'Active' }]);
  });

  it('goes OpenSent → OpenConfirm → Established, negotiating the smaller hold time', () => {
    const fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    let a = fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    expect(a).toEqual([
      { type: 'stopTimer', timer: 'connectRetry' },
      { type: 'sendOpen', conn: 1 },
      { type: 'startTimer', timer: 'hold:1', seconds: LARGE_HOLD_TIME },
      { type: 'state', from: 'Connect', to: 'OpenSent' },
    ]);
    a = fsm.handle({ type: 'message', conn: 1, message: openFrom() });
    expect(a).toEqual([
      { type: 'sendKeepalive', conn: 1 },
      { type: 'startTimer', timer: 'hold:1', seconds: 30 },
      { type: 'startTimer', timer: 'keepalive:1', seconds: 10 },
      { type: 'state', from: 'OpenSent', to: 'OpenConfirm' },
    ]);
    a = fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } });
    expect(of(a, 'established')).toHaveLength(1);
    expect(of(a, 'established')[0]!.negotiated).toMatchObject({
      holdTime: 30,
      keepaliveTime: 10,
      families: ['ipv4-unicast', 'ipv6-unicast'],
      fourOctetAs: true,
      routeRefresh: true,
      gracefulRestart: false,
    });
    expect(a.at(-1)).toEqual({ type: 'state', from: 'OpenConfirm', to: 'Established' });
  });

  it('hold time 0 on either side means no hold timer and no keepalives', () => {
    const fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    const a = fsm.handle({ type: 'message', conn: 1, message: openFrom({ holdTime: 0 }) });
    expect(of(a, 'startTimer')).toEqual([]);
    expect(of(a, 'stopTimer')).toEqual([{ type: 'stopTimer', timer: 'hold:1' }]);
    const b = fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } });
    expect(of(b, 'established')[0]!.negotiated).toMatchObject({ holdTime: 0, keepaliveTime: 0 });
    expect(of(b, 'startTimer')).toEqual([]);
  });

  it('negotiates keepalive, families, graceful restart and 4-octet AS from both sides', () => {
    expect(negotiate(config({ keepaliveTime: 5 }), openFrom({ holdTime: 9 }))).toMatchObject({
      holdTime: 9,
      keepaliveTime: 3,
    });
    expect(negotiate(config({ keepaliveTime: 2 }), openFrom({ holdTime: 90 }))).toMatchObject({
      holdTime: 90,
      keepaliveTime: 2,
    });
    // No multiprotocol capability: IPv4 unicast only (RFC 4760).
    expect(negotiate(config(), openFrom({}, { families: undefined })).families).toEqual(['ipv4-unicast']);
    expect(negotiate(config(), openFrom({}, { fourOctetAs: undefined })).fourOctetAs).toBe(false);
    const gr = { restarting: false, restartTime: 120, families: [] };
    expect(negotiate(config(), openFrom({}, { gracefulRestart: gr })).gracefulRestart).toBe(false);
    expect(
      negotiate(config({ gracefulRestart: { restartTime: 120 } }), openFrom({}, { gracefulRestart: gr }))
        .gracefulRestart,
    ).toBe(true);
  });
});

describe('errors', { timeout: 60_000 }, () => {
  it('refuses an OPEN from the wrong AS with OPEN Message Error/Bad Peer AS', () => {
    const fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    const a = fsm.handle({
      type: 'message',
      conn: 1,
      message: openFrom({ myAs: 65009 }, { fourOctetAs: 65009 }),
    });
    expect(of(a, 'sendNotification')[0]!.notification).toMatchObject({ code: 2, subcode: 2 });
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: 1 }]);
    expect(of(a, 'error')[0]!.error).toMatchObject({
      direction: 'sent',
      name: 'OPEN Message Error/Bad Peer AS',
    });
    expect(fsm.state).toBe('Idle');
  });

  it('refuses an iBGP peer that uses our BGP identifier', () => {
    const fsm = new PeerFsm(config({ peerAsn: 65001 }));
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    const a = fsm.handle({
      type: 'message',
      conn: 1,
      message: openFrom({ myAs: 65001, bgpId: LOCAL_ID }, { fourOctetAs: 65001 }),
    });
    expect(of(a, 'sendNotification')[0]!.notification).toMatchObject({ code: 2, subcode: 3 });
  });

  it('answers unexpected messages with the RFC 6608 FSM error subcodes', () => {
    let fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    let a = fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } });
    expect(of(a, 'sendNotification')[0]!.notification).toEqual({ code: 5, subcode: 1 });

    fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    fsm.handle({ type: 'message', conn: 1, message: openFrom() });
    a = fsm.handle({ type: 'message', conn: 1, message: openFrom() });
    expect(of(a, 'sendNotification')[0]!.notification).toEqual({ code: 5, subcode: 2 });

    fsm = established();
    a = fsm.handle({ type: 'message', conn: 1, message: openFrom() });
    expect(of(a, 'sendNotification')[0]!.notification).toEqual({ code: 5, subcode: 3 });
    expect(of(a, 'sessionDown')).toHaveLength(1);
  });

  it('sends the decoder error as the NOTIFICATION, with its data, and resets', () => {
    const fsm = established();
    const error = new BgpMessageError(3, 10, 'prefix length 33', Uint8Array.of(1, 2));
    const a = fsm.handle({ type: 'decodeError', conn: 1, error });
    expect(of(a, 'sendNotification')[0]!.notification).toEqual({
      code: 3,
      subcode: 10,
      data: Uint8Array.of(1, 2),
    });
    expect(of(a, 'sessionDown')[0]!.error).toMatchObject({ direction: 'sent', code: 3, subcode: 10 });
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: 1 }]);
    expect(fsm.state).toBe('Idle');
  });

  it('a received NOTIFICATION ends the session without an answer', () => {
    const fsm = established();
    const a = fsm.handle({
      type: 'message',
      conn: 1,
      message: { type: 'notification', code: 6, subcode: 2, data: new Uint8Array(0), shutdownMessage: 'bye' },
    });
    expect(of(a, 'sendNotification')).toEqual([]);
    expect(of(a, 'sessionDown')[0]!.error).toMatchObject({
      direction: 'received',
      name: 'Cease/Administrative Shutdown',
      message: 'bye',
    });
  });
});

describe('timers', { timeout: 60_000 }, () => {
  it('hold timer expiry sends Hold Timer Expired, drops the session and backs off', () => {
    const fsm = established({ connectRetryTime: 5 });
    const a = fsm.handle({ type: 'timer', timer: 'hold:1' });
    expect(of(a, 'sendNotification')[0]!.notification).toEqual({ code: 4, subcode: 0 });
    expect(of(a, 'sessionDown')).toHaveLength(1);
    expect(of(a, 'startTimer')).toEqual([{ type: 'startTimer', timer: 'connectRetry', seconds: 5 }]);
    expect(fsm.state).toBe('Idle');
    const b = fsm.handle({ type: 'timer', timer: 'connectRetry' });
    expect(of(b, 'connect')).toEqual([{ type: 'connect', conn: 2 }]);
    expect(fsm.state).toBe('Connect');
  });

  it('messages in Established restart the hold timer; the keepalive timer sends and re-arms', () => {
    const fsm = established();
    expect(fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } })).toEqual([
      { type: 'startTimer', timer: 'hold:1', seconds: 30 },
    ]);
    const update = {
      type: 'update' as const,
      withdrawn: [],
      nlri: [],
      attributes: {},
      attributeCount: 0,
    };
    expect(fsm.handle({ type: 'message', conn: 1, message: update })).toEqual([
      { type: 'startTimer', timer: 'hold:1', seconds: 30 },
      { type: 'deliver', conn: 1, message: update },
    ]);
    expect(fsm.handle({ type: 'timer', timer: 'keepalive:1' })).toEqual([
      { type: 'sendKeepalive', conn: 1 },
      { type: 'startTimer', timer: 'keepalive:1', seconds: 10 },
    ]);
  });

  it('connect retries back off exponentially with at most 25% jitter, capped', () => {
    let r = 0;
    const fsm = new PeerFsm(config({ connectRetryTime: 2, random: () => r }));
    expect([1, 2, 3, 4, 5].map((n) => fsm.backoffSeconds(n))).toEqual([2, 4, 8, 16, 32]);
    expect(fsm.backoffSeconds(30)).toBe(300);
    r = 0.999;
    expect(fsm.backoffSeconds(1)).toBeCloseTo(1.5, 2);
    const long = new PeerFsm(config({ connectRetryTime: 600, random: () => 0 }));
    expect(long.backoffSeconds(5)).toBe(600);
  });

  it('a failed connect waits the backoff in Active; a hanging one is abandoned when the timer fires', () => {
    const fsm = new PeerFsm(config({ connectRetryTime: 5 }));
    fsm.handle({ type: 'start' });
    const a = fsm.handle({ type: 'connectFailed', conn: 1, error: 'ECONNREFUSED' });
    expect(of(a, 'startTimer')).toEqual([{ type: 'startTimer', timer: 'connectRetry', seconds: 5 }]);
    expect(fsm.state).toBe('Active');
    const b = fsm.handle({ type: 'timer', timer: 'connectRetry' });
    expect(of(b, 'connect')).toEqual([{ type: 'connect', conn: 2 }]);
    const c = fsm.handle({ type: 'timer', timer: 'connectRetry' });
    expect(of(c, 'close')).toEqual([{ type: 'close', conn: 2 }]);
    // The abandoned attempt is reported, with how long it went unanswered.
    const armed = of(b, 'startTimer').find((t) => t.timer === 'connectRetry');
    expect(of(c, 'connectTimedOut')).toEqual([{ type: 'connectTimedOut', conn: 2, seconds: armed?.seconds }]);
    expect(of(c, 'connect')).toEqual([{ type: 'connect', conn: 3 }]);
    // The late success of an abandoned attempt is closed.
    expect(fsm.handle({ type: 'connected', conn: 2, direction: 'outgoing' })).toEqual([
      { type: 'close', conn: 2 },
    ]);
  });
});

describe('collision detection (RFC 4271 6.8)', { timeout: 60_000 }, () => {
  function collide(localId: number, remoteId: number) {
    const fsm = new PeerFsm(config({ localId }));
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    const incoming = fsm.allocateConnection();
    fsm.handle({ type: 'connected', conn: incoming, direction: 'incoming' });
    fsm.handle({ type: 'message', conn: 1, message: openFrom({ bgpId: remoteId }) });
    expect(fsm.state).toBe('OpenConfirm');
    const a = fsm.handle({ type: 'message', conn: incoming, message: openFrom({ bgpId: remoteId }) });
    return { fsm, a, incoming };
  }

  it('with the higher identifier we keep our own (outgoing) connection', () => {
    const { fsm, a, incoming } = collide(0x0a000009, 0x0a000002);
    expect(of(a, 'sendNotification')).toEqual([
      { type: 'sendNotification', conn: incoming, notification: { code: 6, subcode: 7 } },
    ]);
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: incoming }]);
    fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } });
    expect(fsm.establishedConnection).toBe(1);
  });

  it("with the lower identifier we keep the peer's (incoming) connection", () => {
    const { fsm, a, incoming } = collide(0x0a000001, 0x0a000002);
    expect(of(a, 'sendNotification')).toEqual([
      { type: 'sendNotification', conn: 1, notification: { code: 6, subcode: 7 } },
    ]);
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: 1 }]);
    fsm.handle({ type: 'message', conn: incoming, message: { type: 'keepalive' } });
    expect(fsm.establishedConnection).toBe(incoming);
    expect(fsm.state).toBe('Established');
  });

  it('compares identifiers as unsigned numbers', () => {
    const { a } = collide(0xc0000001, 0x0a000002); // 192.0.0.1 > 10.0.0.2
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: 2 }]);
  });

  it('refuses a second connection while Established, unless the peer does graceful restart', () => {
    const fsm = established();
    const c = fsm.allocateConnection();
    fsm.handle({ type: 'connected', conn: c, direction: 'incoming' });
    const a = fsm.handle({ type: 'message', conn: c, message: openFrom() });
    expect(of(a, 'sendNotification')).toEqual([
      { type: 'sendNotification', conn: c, notification: { code: 6, subcode: 7 } },
    ]);
    expect(fsm.establishedConnection).toBe(1);

    const gr = { restarting: true, restartTime: 120, families: [] };
    const grFsm = established(
      { gracefulRestart: { restartTime: 120 } },
      openFrom({}, { gracefulRestart: gr }),
    );
    const d = grFsm.allocateConnection();
    grFsm.handle({ type: 'connected', conn: d, direction: 'incoming' });
    const b = grFsm.handle({ type: 'message', conn: d, message: openFrom({}, { gracefulRestart: gr }) });
    expect(of(b, 'sessionDown')).toEqual([expect.objectContaining({ conn: 1 })]);
    expect(of(b, 'sendNotification')).toEqual([]);
    expect(grFsm.state).toBe('OpenConfirm');
  });

  it('Established closes the other handshakes with Cease/Connection Collision Resolution', () => {
    const fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    fsm.handle({ type: 'connected', conn: 1, direction: 'outgoing' });
    const c = fsm.allocateConnection();
    fsm.handle({ type: 'connected', conn: c, direction: 'incoming' });
    fsm.handle({ type: 'message', conn: 1, message: openFrom() });
    const a = fsm.handle({ type: 'message', conn: 1, message: { type: 'keepalive' } });
    expect(of(a, 'sendNotification')).toEqual([
      { type: 'sendNotification', conn: c, notification: { code: 6, subcode: 7 } },
    ]);
    expect(fsm.state).toBe('Established');
  });
});

describe('connection loss', { timeout: 60_000 }, () => {
  it('a TCP close in Established ends the session; an active peer backs off in Idle, a passive one waits in Active', () => {
    const active = established();
    const a = active.handle({ type: 'closed', conn: 1, error: 'ECONNRESET' });
    expect(of(a, 'sessionDown')[0]!.error).toMatchObject({
      direction: 'local',
      name: 'Connection closed',
      message: 'ECONNRESET',
    });
    expect(of(a, 'sendNotification')).toEqual([]);
    expect(active.state).toBe('Idle');

    const passive = new PeerFsm(config({ passive: true }));
    passive.handle({ type: 'start' });
    passive.handle({ type: 'connected', conn: 5, direction: 'incoming' });
    passive.handle({ type: 'message', conn: 5, message: openFrom() });
    passive.handle({ type: 'message', conn: 5, message: { type: 'keepalive' } });
    expect(passive.state).toBe('Established');
    const b = passive.handle({ type: 'closed', conn: 5 });
    expect(of(b, 'startTimer')).toEqual([]);
    expect(passive.state).toBe('Active');
    // The peer comes back at once and is accepted.
    passive.handle({ type: 'connected', conn: 6, direction: 'incoming' });
    expect(passive.state).toBe('OpenSent');
  });
});

describe('an incoming handshake failing while our own attempt is in flight', { timeout: 60_000 }, () => {
  it('keeps a timer bounding the attempt', () => {
    const fsm = new PeerFsm(config());
    fsm.handle({ type: 'start' });
    const c = fsm.allocateConnection();
    fsm.handle({ type: 'connected', conn: c, direction: 'incoming' });
    // The connect-retry timer fires during the incoming handshake: nothing to retry yet.
    expect(fsm.handle({ type: 'timer', timer: 'connectRetry' })).toEqual([]);
    const a = fsm.handle({ type: 'message', conn: c, message: openFrom({ myAs: 1 }, { fourOctetAs: 1 }) });
    expect(of(a, 'startTimer')).toEqual([{ type: 'startTimer', timer: 'connectRetry', seconds: 5 }]);
    expect(fsm.state).toBe('Connect');
    const b = fsm.handle({ type: 'timer', timer: 'connectRetry' });
    expect(of(b, 'close')).toEqual([{ type: 'close', conn: 1 }]);
    expect(of(b, 'connect')).toEqual([{ type: 'connect', conn: 3 }]);
  });
});

describe('stop', { timeout: 60_000 }, () => {
  it('sends Cease/Administrative Shutdown with the shutdown communication and goes Idle', () => {
    const fsm = established();
    const notification = { code: 6, subcode: 2, shutdownMessage: 'maintenance' };
    const a = fsm.handle({ type: 'stop', notification });
    expect(of(a, 'sendNotification')).toEqual([{ type: 'sendNotification', conn: 1, notification }]);
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: 1 }]);
    expect(fsm.state).toBe('Idle');
    expect(fsm.handle({ type: 'timer', timer: 'connectRetry' })).toEqual([]);
  });

  it('a graceful stop closes without NOTIFICATION', () => {
    const fsm = established();
    const a = fsm.handle({ type: 'stop' });
    expect(of(a, 'sendNotification')).toEqual([]);
    expect(of(a, 'close')).toEqual([{ type: 'close', conn: 1 }]);
    expect(of(a, 'sessionDown')).toHaveLength(1);
  });

  it('refuses connections while stopped', () => {
    const fsm = new PeerFsm(config());
    expect(fsm.handle({ type: 'connected', conn: 7, direction: 'incoming' })).toEqual([
      { type: 'close', conn: 7 },
    ]);
  });
});
