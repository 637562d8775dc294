/**
 * systemd's notify protocol (sd_notify(3)): READY=1 once the programs are
 * attached and the first sync is done, STATUS= with a one-line summary,
 * RELOADING=1/READY=1 around a reload, STOPPING=1, and WATCHDOG=1 pings from
 * the event loop at half of WatchdogSec, so a frozen loop gets restarted.
 * Without NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
import { sendUnixDatagram } from '../bpf/index.js';

export class SystemdNotifier {
  private readonly socket = process.env.NOTIFY_SOCKET;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  get enabled(): boolean {
    return Boolean(this.socket);
  }

  notify(fields: Record<string, string>): void {
    if (!this.socket) return;
    const message = Object.entries(fields)
      .map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`)
      .join('\n');
    try {
      sendUnixDatagram(this.socket, message);
    } catch (error) {
      this.onError(error);
    }
  }

  ready(status: string): void {
    this.notify({ READY: '1', STATUS: status });
  }

  /** Pings at half the interval systemd asked for (WATCHDOG_USEC), if it asked us (WATCHDOG_PID). */
  startWatchdog(): void {
    const usec = Number(process.env.WATCHDOG_USEC);
    const pid = process.env.WATCHDOG_PID;
    if (!this.socket || !(usec > 0) || (pid !== undefined && Number(pid) !== process.pid)) return;
    this.watchdog = setInterval(() => this.notify({ WATCHDOG: '1' }), Math.max(1, usec / 2000));
  }

  stop(): void {
    clearInterval(this.watchdog);
    this.notify({ STOPPING: '1' });
  }
}
