/** The libbpf bridge: everything above bpf/ uses these, and never koffi. */
export * from './attach.js';
export * from './bpffs.js';
export * from './clock.js';
export * from './codec.js';
export * from './map.js';
export { BpfError, errnoName } from './native/errors.js';
export * from './netlink.js';
export * from './netns.js';
export * from './object.js';
export * from './packet-socket.js';
export * from './pin-migration.js';
export * from './ringbuf.js';
export * from './test-run.js';
export * from './unix-datagram.js';
