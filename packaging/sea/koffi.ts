/**
 * Stands in for the koffi package inside the single executable, where esbuild
 * aliases `koffi` to this file. A native module cannot be embedded in a SEA
 * blob, so the package ships koffi.node in /usr/lib/nodewarden and this loads
 * it with process.dlopen. bpf/native/ffi.ts stays the only code that calls koffi.
 */
import { join } from 'node:path';
import { packageLibDir } from './lib-dir.js';

// The JS side of koffi checks the same: its native module must match the version it was built for.
declare const __KOFFI_VERSION__: string;

function loadNativeKoffi(): unknown {
  const path = join(packageLibDir(), 'koffi.node');
  const module = { exports: {} as { version?: string } };
  try {
    process.dlopen(module, path);
  } catch (error) {
    throw new Error(
      `cannot load koffi's native module ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (module.exports.version !== __KOFFI_VERSION__) {
    throw new Error(
      `${path} is koffi ${module.exports.version ?? '?'}, but this nodewarden was built with koffi ${__KOFFI_VERSION__}`,
    );
  }
  return module.exports;
}

export default loadNativeKoffi();
