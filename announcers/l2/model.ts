/**
 * The L2 announcer's input, whatever the source. Standalone config lists
 * announcements directly; later, CiliumL2AnnouncementPolicy and MetalLB's
 * L2Advertisement map onto the same shape (an IP set plus interface patterns),
 * and the ownership input comes from heartbeat hashing instead of config.
 */

export interface L2Announcement {
  /** IPv4 or IPv6 addresses, as written (canonical form is the planner's job). */
  ips: readonly string[];
  /** Regular expressions over interface names, as Cilium's `interfaces`; any match selects. */
  interfaces: readonly string[];
}

/** What the planner needs to know about one interface of this node. */
export interface InterfaceFacts {
  name: string;
  ifindex: number;
  /** "aa:bb:cc:dd:ee:ff", or "" for devices without an Ethernet address. */
  mac: string;
  /** Administratively up (IFF_UP) and with carrier (operstate up or unknown). */
  up: boolean;
  noarp: boolean;
  /** IFF_SLAVE: a bond member; its bond announces. */
  bondSlave: boolean;
  /** ARPHRD_ETHER with a 6-byte address; false for L3-only devices (tun, wireguard, lo). */
  ethernet: boolean;
  /**
   * A bond's members (ifindexes). XDP on a bond runs on its members, and the program
   * sees the member's ifindex as the ingress interface.
   */
  members?: readonly number[];
}

export interface L2Settings {
  /** Gratuitous ARP / unsolicited NA burst on becoming owner. */
  gratuitousCount: number;
  gratuitousIntervalMs: number;
  /** 0: no periodic re-announce. */
  reannounceIntervalMs: number;
}
