/** Replaced at bundle time by esbuild's `define`; falls back to package.json when run from source. */
declare const __NODEWARDEN_VERSION__: string | undefined;

export const VERSION: string =
  typeof __NODEWARDEN_VERSION__ === 'string' ? __NODEWARDEN_VERSION__ : '0.0.0-dev';
