/** Per-instance paths. Tests run several daemons on one machine by giving each its own. */
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/nodewarden';
export const DEFAULT_RUN_DIR = '/run/nodewarden';

export function controlSocketPath(runDir: string): string {
  return `${runDir}/nodewarden.sock`;
}
