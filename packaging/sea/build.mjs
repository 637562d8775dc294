// Builds the single executable: one CommonJS bundle of the CLI and daemon
// (Node 20's SEA runs a single CommonJS script), a SEA blob made by this Node,
// and a stripped copy of this Node with the blob injected by postject.
// Usage: node packaging/sea/build.mjs OUT_DIR [VERSION]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { inject } from 'postject';

const repo = resolve(import.meta.dirname, '../..');
const outDir = resolve(process.argv[2] ?? join(repo, 'dist/sea'));
const readJson = (path) => JSON.parse(readFileSync(join(repo, path), 'utf8'));
const version = process.argv[3] ?? readJson('package.json').version;
const koffiVersion = readJson('node_modules/koffi/package.json').version;

mkdirSync(outDir, { recursive: true });
const script = join(outDir, 'nodewarden.cjs');
await build({
  entryPoints: [join(repo, 'packaging/sea/entry.ts')],
  outfile: script,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  alias: { koffi: join(repo, 'packaging/sea/koffi.ts') },
  define: {
    __NODEWARDEN_VERSION__: JSON.stringify(version),
    __KOFFI_VERSION__: JSON.stringify(koffiVersion),
    // Only bpf/paths.ts reads import.meta.url, as a fallback behind NODEWARDEN_BPF_DIR,
    // which runtime.ts always sets.
    'import.meta.url': '"file:///usr/lib/nodewarden/nodewarden.cjs"',
  },
  legalComments: 'none',
  logLevel: 'warning',
});

const blob = join(outDir, 'nodewarden.blob');
const seaConfig = join(outDir, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], {
  stdio: ['ignore', 'ignore', 'inherit'],
});

const executable = join(outDir, 'nodewarden');
copyFileSync(process.execPath, executable);
// The distribution's node carries its debug info (about half its size); the package does not need it.
// strip warns about each of node's many notes; its exit status is what counts.
execFileSync('strip', ['--strip-all', '--remove-section=.comment', executable], { stdio: 'ignore' });
await inject(executable, 'NODE_SEA_BLOB', readFileSync(blob), {
  sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
});
console.log(`sea: ${executable} (nodewarden ${version}, node ${process.version})`);
