// Bundles the CLI and daemon into dist/nodewarden.mjs, one ESM file that the
// package (and Node's single-executable support) ships. koffi stays external:
// it loads its native module from its own package directory.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['daemon/main.ts'],
  outfile: 'dist/nodewarden.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  define: { __NODEWARDEN_VERSION__: JSON.stringify(version) },
  // pino and friends are CommonJS; give them a require() inside the ESM bundle.
  banner: {
    js: "import { createRequire as __nwCreateRequire } from 'node:module'; const require = __nwCreateRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  logLevel: 'warning',
});
