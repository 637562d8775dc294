#!/usr/bin/env bash
# The whole test suite: type check, lint (inside the unit tests), unit tests,
# and the privileged integration tests against the real kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
./scripts/setup.sh
npx tsc --noEmit -p .
mkdir -p .cache
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest.json "$@" || status=$?
# One plain closing line that any CI log reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/vitest.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' || true
echo "test.sh: finished in $(( $(date +%s) - start )) s"
exit "$status"
