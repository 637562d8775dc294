import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURE_BPF = (name: string) => `${REPO_ROOT}test/fixtures/bpf/out/${name}.o`;
export const BPF_OBJECT = (name: string) => `${REPO_ROOT}bpf/out/${name}.o`;
export const CLI_BUNDLE = `${REPO_ROOT}dist/nodewarden.mjs`;
