#!/usr/bin/env bash
# The published specifications parse with their own reference tooling: docs/asyncapi.yaml
# with the AsyncAPI Initiative's parser (Node.js, pinned in tools/speccheck/package-lock.json).
# The services' OpenAPI documents are checked in tests/specs with openapi-spec-validator.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=tools/speccheck
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "speccheck: $tool (Node.js 18+) is needed to check docs/asyncapi.yaml" >&2; exit 1; }
done
if [ ! -f "$dir/node_modules/.installed" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.installed" ]; then
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  touch "$dir/node_modules/.installed"
fi
node "$dir/check-asyncapi.mjs" docs/asyncapi.yaml
