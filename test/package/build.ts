/**
 * Packages for the package tests, built by scripts/package.sh --fast and
 * cached under .cache/packages/ by a hash of everything that goes into them,
 * so a rerun without source changes builds nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../lab/index.js';
import { REPO_ROOT } from '../support/paths.js';

export interface BuiltPackages {
  version: string;
  deb: string;
  rpm: string;
}

/** Sources of the executable and the packages; bpf/out is built from bpf/*.c, which is listed. */
const INPUTS = [
  'announcers',
  'bpf',
  'daemon',
  'host-policies',
  'model',
  'packaging',
  'manifests',
  'systemd',
  'docs',
  'README.md',
  'package.json',
  'scripts/package.sh',
];

function inputsHash(): string {
  const hash = createHash('sha256').update(process.version);
  for (const input of INPUTS) {
    const path = join(REPO_ROOT, input);
    if (!existsSync(path)) continue;
    const files = statSync(path).isDirectory()
      ? readdirSync(path, { recursive: true, encoding: 'utf8' })
          .map((f) => join(path, f))
          .filter((f) => !f.includes('/out/') && statSync(f).isFile())
          .sort()
      : [path];
    for (const file of files) hash.update(file).update(readFileSync(file));
  }
  return hash.digest('hex').slice(0, 16);
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The .deb and .rpm of `version` (default: package.json's), built unless cached. */
export async function buildPackages(version = packageVersion()): Promise<BuiltPackages> {
  const out = join(REPO_ROOT, '.cache', 'packages', `${version}-${inputsHash()}`);
  const built = {
    version,
    deb: join(out, `nodewarden_${version}_amd64.deb`),
    rpm: join(out, `nodewarden-${version.replaceAll('-', '~')}-1.x86_64.rpm`),
  };
  if (!existsSync(built.deb) || !existsSync(built.rpm)) {
    await run([join(REPO_ROOT, 'scripts/package.sh'), '--fast', '--version', version, '--out', out], {
      timeoutMs: 300_000,
    });
  }
  return built;
}
