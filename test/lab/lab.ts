import { type RunOptions, type RunResult, run } from './exec.js';
import { assertHostName, assertIfName, labNetnsName, parseLabNetns } from './names.js';
import { deleteLabNamespaces, listLabNamespaces } from './netns.js';
import { LabProcess, type SpawnOptions } from './process.js';

const PROCESS_GRACE_MS = 500;
const BRIDGE_DEV = 'br0';

export interface LinkEnd {
  host: Host;
  dev: string;
  mac: string;
}

export interface Link {
  a: LinkEnd;
  b: LinkEnd;
}

export interface LinkOptions {
  aDev?: string;
  bDev?: string;
  /** CIDRs, IPv4 or IPv6, e.g. '10.0.0.1/24', 'fd00::1/64'. */
  aAddrs?: string[];
  bAddrs?: string[];
  mtu?: number;
}

export interface AttachOptions {
  /** Interface name inside the host; defaults to the first free ethN. */
  dev?: string;
  addrs?: string[];
  mtu?: number;
}

export interface BridgePort extends LinkEnd {
  /** The bridge-side veth end, inside the switch namespace. */
  port: string;
}

/** A network namespace. Every method acts inside it only. */
export class Host {
  constructor(
    /** Short name given to `lab.host()`. */
    readonly name: string,
    /** Full namespace name, for `ip netns exec` / `ip -n`. */
    readonly netns: string,
    private readonly track: (proc: LabProcess) => void,
  ) {}

  /** Runs `cmd` inside the namespace; throws a CommandError on a non-zero exit unless allowFailure. */
  exec(cmd: string[], opts?: RunOptions): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.netns, ...cmd], opts);
  }

  /** Starts `cmd` in the background inside the namespace; the lab kills it on destroy. */
  spawn(cmd: string[], opts?: SpawnOptions): LabProcess {
    // `ip netns exec` execs the command in place, so the pid is the command's own.
    const proc = new LabProcess(['ip', 'netns', 'exec', this.netns, ...cmd], opts);
    this.track(proc);
    return proc;
  }

  /** `ip -n <netns> ...args`. */
  ip(args: string[], opts?: RunOptions): Promise<RunResult> {
    return run(['ip', '-n', this.netns, ...args], opts);
  }

  async ifindex(dev: string): Promise<number> {
    return (await this.#linkInfo(dev)).ifindex;
  }

  async mac(dev: string): Promise<string> {
    return (await this.#linkInfo(dev)).address;
  }

  async addAddress(dev: string, cidr: string): Promise<void> {
    // Without nodad an IPv6 address stays tentative for a second or more and cannot be used.
    const extra = cidr.includes(':') ? ['nodad'] : [];
    await this.ip(['addr', 'add', cidr, 'dev', dev, ...extra]);
  }

  /** At least one of `via` and `dev` is needed; pass `via` undefined for an on-link route. */
  async addRoute(dst: string, via?: string, dev?: string): Promise<void> {
    if (via === undefined && dev === undefined)
      throw new Error(`addRoute ${dst}: need a gateway or a device`);
    // 'default' says nothing about the family, so take it from the addresses.
    const family = dst.includes(':') || via?.includes(':') ? '-6' : '-4';
    await this.ip([
      family,
      'route',
      'add',
      dst,
      ...(via === undefined ? [] : ['via', via]),
      ...(dev === undefined ? [] : ['dev', dev]),
    ]);
  }

  async setUp(dev: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'up']);
  }

  async setDown(dev: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'down']);
  }

  /** Sets a `net.*` sysctl of this namespace, e.g. ('net.ipv4.ip_forward', 1). */
  async sysctl(key: string, value: string | number): Promise<void> {
    // Only net.* sysctls are per namespace; any other key would reconfigure the machine itself.
    if (!/^net[./]/.test(key) || key.includes('..')) {
      throw new Error(`sysctl ${key}: only net.* keys are namespaced and allowed in the lab`);
    }
    // The slash form exists for keys whose parts contain dots, e.g. net/ipv4/conf/eth0.100/forwarding.
    const path = `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
    // /proc/sys/net resolves to the namespace of the writer, so the write must happen inside.
    await this.exec(['sh', '-c', 'printf "%s\\n" "$2" > "$1"', 'sh', path, String(value)]);
  }

  async #linkInfo(dev: string): Promise<{ ifindex: number; address: string }> {
    const { stdout } = await this.ip(['-j', 'link', 'show', 'dev', dev]);
    const [info] = JSON.parse(stdout) as { ifindex: number; address: string }[];
    if (!info) throw new Error(`${this.name}: no interface ${dev}`);
    return info;
  }
}

/** A Linux bridge alone in its own "switch" namespace: a multi-node L2 segment. */
export class Bridge {
  constructor(
    readonly name: string,
    /** The switch namespace; use it to run tcpdump or `bridge fdb` on the segment. */
    readonly switchHost: Host,
    readonly dev: string,
    private readonly attachFn: (host: Host, opts: AttachOptions) => Promise<BridgePort>,
  ) {}

  get netns(): string {
    return this.switchHost.netns;
  }

  /** Plugs `host` into the segment with a new veth and addresses the host end. */
  attach(host: Host, opts: AttachOptions = {}): Promise<BridgePort> {
    return this.attachFn(host, opts);
  }
}

/** Set by createLab; module state may be re-evaluated in the same process, see createLab. */
let lastLabId = 0;

export class Lab {
  #namespaces: string[] = [];
  #hosts = new Map<string, Host>();
  #devs = new Map<Host, Set<string>>();
  #processes = new Set<LabProcess>();
  #destroyed: Promise<void> | undefined;

  constructor(readonly id: number) {}

  /** Full names of the namespaces this lab created, including switch namespaces. */
  get namespaces(): readonly string[] {
    return [...this.#namespaces];
  }

  get destroyed(): boolean {
    return this.#destroyed !== undefined;
  }

  /** Creates a namespace with `lo` up. */
  async host(name: string): Promise<Host> {
    this.#assertAlive();
    assertHostName(name);
    if (this.#hosts.has(name)) throw new Error(`lab ${this.id} already has a host named ${name}`);
    const netns = labNetnsName(process.pid, this.id, name);
    const host = new Host(name, netns, (proc) => this.#track(proc));
    this.#hosts.set(name, host);
    this.#devs.set(host, new Set(['lo']));
    // Recorded only once it exists: if `add` failed because the name was taken, the namespace
    // is not ours to delete. A failed `add` removes its own traces.
    await run(['ip', 'netns', 'add', netns]);
    this.#namespaces.push(netns);
    if (this.#destroyed) {
      // destroy() ran while we were creating it (e.g. afterAll after a test timeout).
      await deleteLabNamespaces([netns]);
      throw new Error(`lab ${this.id} was destroyed while creating host ${name}`);
    }
    await host.setUp('lo');
    return host;
  }

  /** Two new hosts joined by one veth, `eth0` on both sides: the shape most tests start from. */
  async pair(aName: string, bName: string, aAddrs: string[], bAddrs: string[]): Promise<[Host, Host]> {
    const a = await this.host(aName);
    const b = await this.host(bName);
    await this.link(a, b, { aDev: 'eth0', bDev: 'eth0', aAddrs, bAddrs });
    return [a, b];
  }

  /** A veth pair between two hosts of this lab, both ends up and addressed. */
  async link(a: Host, b: Host, opts: LinkOptions = {}): Promise<Link> {
    this.#assertAlive();
    this.#assertOwn(a);
    this.#assertOwn(b);
    const aDev = this.#claimDev(a, opts.aDev);
    const bDev = this.#claimDev(b, opts.bDev);
    // Created from inside a's namespace with the peer placed straight into b's: neither end
    // ever exists in the root namespace.
    await a.ip(['link', 'add', aDev, 'type', 'veth', 'peer', 'name', bDev, 'netns', b.netns]);
    return {
      a: await this.#configureEnd(a, aDev, opts.aAddrs, opts.mtu),
      b: await this.#configureEnd(b, bDev, opts.bAddrs, opts.mtu),
    };
  }

  /** A bridge in a dedicated switch namespace named `sw-<name>`. */
  async bridge(name: string): Promise<Bridge> {
    const sw = await this.host(`sw-${name}`);
    this.#claimDev(sw, BRIDGE_DEV);
    // No STP and no snooping: ports forward at once and IPv6 ND multicast is simply flooded.
    await sw.ip(['link', 'add', BRIDGE_DEV, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
    await sw.setUp(BRIDGE_DEV);
    let ports = 0;
    // The number keeps ports unique; the host name is only there to help whoever reads `ip link`.
    return new Bridge(name, sw, BRIDGE_DEV, (host, opts) =>
      this.#attach(sw, `p${++ports}-${host.name}`.slice(0, 15), host, opts),
    );
  }

  /** Kills spawned processes, then anything else in the lab's namespaces, then deletes them. Idempotent. */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  async #teardown(): Promise<void> {
    // Our own children first, gently, so they can clean up; deleteLabNamespaces then SIGKILLs
    // whatever they or exec'd commands left running inside.
    await Promise.all([...this.#processes].map((p) => p.stop(PROCESS_GRACE_MS)));
    await deleteLabNamespaces(this.#namespaces);
  }

  async #attach(sw: Host, portName: string, host: Host, opts: AttachOptions): Promise<BridgePort> {
    this.#assertAlive();
    this.#assertOwn(host);
    const port = this.#claimDev(sw, portName);
    const dev = this.#claimDev(host, opts.dev);
    await sw.ip(['link', 'add', port, 'type', 'veth', 'peer', 'name', dev, 'netns', host.netns]);
    await sw.ip(['link', 'set', 'dev', port, 'master', BRIDGE_DEV]);
    await this.#configureEnd(sw, port, [], opts.mtu);
    return { ...(await this.#configureEnd(host, dev, opts.addrs, opts.mtu)), port };
  }

  async #configureEnd(host: Host, dev: string, addrs: string[] = [], mtu?: number): Promise<LinkEnd> {
    if (mtu !== undefined) await host.ip(['link', 'set', 'dev', dev, 'mtu', String(mtu)]);
    // Up before addressing, so IPv6 prefix routes are installed straight away.
    await host.setUp(dev);
    for (const cidr of addrs) await host.addAddress(dev, cidr);
    return { host, dev, mac: await host.mac(dev) };
  }

  /** Reserves an interface name in `host`, or picks the first free ethN. */
  #claimDev(host: Host, wanted?: string): string {
    const used = this.#devs.get(host)!;
    let dev = wanted;
    if (dev === undefined) {
      let i = 0;
      while (used.has(`eth${i}`)) i++;
      dev = `eth${i}`;
    }
    assertIfName(dev);
    if (used.has(dev)) throw new Error(`host ${host.name} already has an interface named ${dev}`);
    used.add(dev);
    return dev;
  }

  #assertOwn(host: Host): void {
    if (this.#hosts.get(host.name) !== host)
      throw new Error(`host ${host.name} does not belong to lab ${this.id}`);
  }

  #assertAlive(): void {
    if (this.#destroyed) throw new Error(`lab ${this.id} has been destroyed`);
  }

  #track(proc: LabProcess): void {
    if (this.#destroyed) {
      proc.kill('SIGKILL');
      throw new Error(`lab ${this.id} has been destroyed; killed ${proc.pid}`);
    }
    this.#processes.add(proc);
  }
}

/** Creates an empty lab; the caller must `await lab.destroy()` (e.g. in afterAll). */
export async function createLab(): Promise<Lab> {
  // A test runner may re-evaluate this module in the same process, resetting lastLabId while
  // namespaces of an earlier (leaked) lab still exist, so never reuse an id one of them has.
  const taken = (await listLabNamespaces())
    .map(parseLabNetns)
    .filter((p) => p?.pid === process.pid)
    .map((p) => p!.lab);
  lastLabId = Math.max(lastLabId, ...taken) + 1;
  return new Lab(lastLabId);
}

/**
 * Runs `fn` with a fresh lab and always destroys it. If `fn` throws, that error is rethrown
 * (a teardown failure is then only logged, so it cannot mask the real cause).
 */
export async function withLab<T>(fn: (lab: Lab) => Promise<T> | T): Promise<T> {
  const lab = await createLab();
  let result: T;
  try {
    result = await fn(lab);
  } catch (err) {
    await lab.destroy().catch((teardownErr: unknown) => {
      console.error(`lab ${lab.id}: teardown after a failed test also failed:`, teardownErr);
    });
    throw err;
  }
  await lab.destroy();
  return result;
}
