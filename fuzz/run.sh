#!/usr/bin/env bash
# Build every fuzz target, then run each for a while. Exits non-zero as soon as one finds a
# panic, a failed assertion, a timeout or an input that takes too much memory.
#
#   fuzz/run.sh [SECONDS] [TARGET...]        defaults: 60 s, every target
#
# New inputs are kept in fuzz/corpus/<target> (not committed), next to the committed seeds in
# fuzz/seeds/<target>, which are only read. A failing input is saved under
# fuzz/artifacts/<target>/ and printed in base64, so that a CI log is enough to reproduce it.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true

# cargo-fuzz builds with sanitizer flags that need a nightly compiler: the nightly toolchain
# when there is one, else the default toolchain with RUSTC_BOOTSTRAP=1.
if cargo +nightly --version >/dev/null 2>&1; then
  cargo=(cargo +nightly)
else
  cargo=(env RUSTC_BOOTSTRAP=1 cargo)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("${cargo[@]}" fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets" >&2; exit 1; }

"${cargo[@]}" fuzz build

start=$(mktemp)
trap 'rm -f "$start"' EXIT
for target in "${targets[@]}"; do
  echo "fuzz: $target for ${seconds} s"
  mkdir -p "corpus/$target" "seeds/$target"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [ -f "dicts/$target.dict" ]; then
    args+=(-dict="dicts/$target.dict")
  fi
  if ! "${cargo[@]}" fuzz run "$target" "corpus/$target" "seeds/$target" -- "${args[@]}"; then
    if [ -d "artifacts/$target" ]; then
      find "artifacts/$target" -type f -newer "$start" | while read -r input; do
        echo "failing input fuzz/$input, base64:"
        base64 "$input"
      done
    fi
    echo "fuzz: $target FAILED" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${seconds} s each without a failure"
