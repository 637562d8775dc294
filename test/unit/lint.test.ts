import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const biome = fileURLToPath(new URL('../../node_modules/.bin/biome', import.meta.url));

describe('lint', () => {
  it('biome check passes on the whole repository', { timeout: 60_000 }, () => {
    let output = '';
    let status = 0;
    try {
      execFileSync(biome, ['check', '.'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      const e = error as { status?: number | null; stdout?: string; stderr?: string };
      status = e.status ?? -1;
      output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    // On failure the assertion shows biome's own report.
    expect({ status, output }).toEqual({ status: 0, output: '' });
  });
});
