/**
 * The schema of /etc/nodewarden/config.yaml. One schema for every capability:
 * each issue adds its own section here. Objects are strict, so a key we do not
 * know is an error that names it, never something dropped in silence.
 */
import { z } from 'zod';

const interfaceName = z
  .string()
  .min(1)
  .max(15)
  .regex(/^[^\s/]+$/, 'must be an interface name (no spaces or slashes)');

export const datapathSchema = z.strictObject({
  /** tcx links on 6.6+ kernels, tc clsact filters before; `auto` picks. */
  tcMode: z.enum(['auto', 'tcx', 'tc']).default('auto'),
  /** XDP in the driver (`native`) or in the generic skb path. */
  xdpMode: z.enum(['native', 'generic']).default('native'),
});

export const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

export const configSchema = z.strictObject({
  /** The node's name; defaults to the host name. */
  nodeName: z.string().min(1).optional(),
  /** Labels that policy nodeSelectors match in standalone mode. */
  labels: z.record(z.string(), z.string()).default({}),
  source: z.enum(['files', 'kubernetes']).default('files'),
  /** Host devices to enforce on. Empty: the devices that carry a default route. */
  devices: z.array(interfaceName).default([]),
  datapath: datapathSchema.default({ tcMode: 'auto', xdpMode: 'native' }),
  log: logSchema.default({ level: 'info' }),
});

export type Config = z.infer<typeof configSchema>;
export type DatapathConfig = z.infer<typeof datapathSchema>;
