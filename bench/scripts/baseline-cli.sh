#!/usr/bin/env bash
# Builds the `lazypull` bin of another revision in a worktree of its own, for
#   pnpm bench --baseline-cli PATH ...
# which runs it right after this checkout's bin in every repetition (a before/after in one run).
# Prints PATH. Usage: bench/scripts/baseline-cli.sh [REV]   (default: HEAD, the last commit)
set -euo pipefail
rev=${1:-HEAD}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
sha=$(git -C "$repo" rev-parse --short "$rev")
dir=${TMPDIR:-/tmp}/lazypull-baseline-$sha
if [ ! -e "$dir/apps/cli/dist/lazypull.mjs" ]; then
  rm -rf "$dir"
  git -C "$repo" worktree prune
  git -C "$repo" worktree add --detach "$dir" "$sha" >&2
  (cd "$dir" && pnpm install --frozen-lockfile --offline --reporter=silent >&2 && pnpm exec turbo run build --filter=@lazypull/cli... --output-logs=errors-only >&2)
fi
echo "$dir/apps/cli/dist/lazypull.mjs"
