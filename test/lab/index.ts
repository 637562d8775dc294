export { CommandError, formatArgv, type RunOptions, type RunResult, run } from './exec.js';
export {
  type AttachOptions,
  Bridge,
  type BridgePort,
  createLab,
  Host,
  Lab,
  type Link,
  type LinkEnd,
  type LinkOptions,
  withLab,
} from './lab.js';
export { type LabNetns, labNetnsName, NETNS_PREFIX, parseLabNetns } from './names.js';
export {
  deleteLabNamespaces,
  isPidAlive,
  listLabNamespaces,
  listNamespaces,
  sweepStaleLabs,
} from './netns.js';
export { type ExitStatus, LabProcess, type SpawnOptions } from './process.js';
