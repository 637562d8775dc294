/**
 * Runs synchronous code inside another network namespace by switching the
 * calling thread with setns(2). Interface names, ifindexes and bpf_link_create
 * all resolve in the thread's namespace, so the test lab can attach programs to
 * interfaces inside its own namespaces without touching the host's.
 */
import { closeSync, openSync } from 'node:fs';
import { BpfError } from './native/errors.js';
import { c, lastErrno } from './native/ffi.js';

const CLONE_NEWNET = 0x40000000;

function enter(fd: number, what: string): void {
  if (c.setns(fd, CLONE_NEWNET) !== 0) throw new BpfError('enter network namespace', what, lastErrno());
}

/** Calls fn inside the named namespace (/run/netns/<name>) and always switches back. */
export function inNetns<T>(name: string, fn: () => T): T {
  if (fn.constructor.name === 'AsyncFunction') throw new TypeError('inNetns takes a synchronous function');
  const original = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const target = openSync(`/run/netns/${name}`, 'r');
    try {
      enter(target, name);
    } finally {
      closeSync(target);
    }
    try {
      return fn();
    } finally {
      enter(original, 'original');
    }
  } finally {
    closeSync(original);
  }
}
