#!/usr/bin/env bash
# Builds the `lazypull` bin and lazypulld of another revision in a worktree of its own, for
#   pnpm bench --baseline-cli PATH ...      (runs that bin right after this checkout's)
#   pnpm bench --baseline-daemon PATH ...   (runs that lazypulld right after this checkout's)
# in every repetition (a before/after in one run).
# Prints PATH. Usage: bench/scripts/baseline-cli.sh [REV] [cli|daemon]   (default: HEAD, the last commit; cli)
set -euo pipefail
rev=${1:-HEAD}
what=${2:-cli}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
sha=$(git -C "$repo" rev-parse --short "$rev")
dir=${TMPDIR:-/tmp}/lazypull-baseline-$sha
if [ ! -e "$dir/apps/cli/dist/lazypull.mjs" ] || [ ! -e "$dir/apps/daemon/dist/main.js" ]; then
  rm -rf "$dir"
  git -C "$repo" worktree prune
  git -C "$repo" worktree add --detach "$dir" "$sha" >&2
  (cd "$dir" && pnpm install --frozen-lockfile --offline --reporter=silent >&2 && pnpm exec turbo run build --filter=@lazypull/cli... --filter=@lazypull/daemon... --output-logs=errors-only >&2)
fi
case $what in
  cli) echo "$dir/apps/cli/dist/lazypull.mjs" ;;
  daemon) echo "$dir/apps/daemon/dist/main.js" ;;
  *) echo "baseline-cli.sh: say cli or daemon, not $what" >&2; exit 2 ;;
esac
