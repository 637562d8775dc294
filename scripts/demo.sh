#!/usr/bin/env bash
# The main job: runs the real nodewarden daemon inside a throwaway lab network
# namespace and shows what it does. Nothing outside the lab is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec npx tsx scripts/demo.ts "$@"
