#!/usr/bin/env bash
# Newest-stack check: install bborzan the way a user does (`pip install -e .`, no dev extras) into a virtualenv of
# its own, with the newest releases that settings.ini's `requirements` ranges allow (fastai, fastcore, fastprogress,
# numpy, pandas, scipy, scikit-learn, ...), and run every lesson at small size (BBORZAN_FAST=1) in it.
#
# nbdev 2 can't run with fastcore 2, so the lessons are run by Jupyter's own client
# (`jupyter nbconvert --to notebook --execute`), not by `nbdev_test`. They run in a copy of nbs/ in a temporary
# folder, and the executed notebooks are written there: nothing in the repo is changed.
#
#     tools/newest_stack.sh            # reuse the venv (upgraded to the newest releases), run every lesson
#     tools/newest_stack.sh --fresh    # build the venv from nothing first
#     tools/newest_stack.sh nbs/11_lesson_human_numbers.ipynb ...   # only these lessons
#
# The venv lives in $BBORZAN_NEWEST_CACHE (default ~/.cache/bborzan-newest); a fresh one is ~6 GB and takes a few
# minutes to install. Prints one PASS/FAIL line per notebook and a summary; exits 1 if any notebook failed.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
unset PYTHONPATH                       # the lessons must import the bborzan installed in the venv below
start=$(date +%s)

fresh=0; notebooks=()
for a in "$@"; do
  case "$a" in
    --fresh) fresh=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) notebooks+=("$a") ;;
  esac
done
[ ${#notebooks[@]} -gt 0 ] || notebooks=(nbs/1*_lesson_*.ipynb)

cache="${BBORZAN_NEWEST_CACHE:-$HOME/.cache/bborzan-newest}"
venv="$cache/venv"
if [ "$fresh" = 1 ] || [ ! -x "$venv/bin/python" ]; then
  echo "newest: building a fresh virtualenv in $venv"
  rm -rf "$venv"; mkdir -p "$cache"
  python3 -m venv "$venv" || exit 2
  "$venv/bin/python" -m pip install -q --upgrade pip || exit 2
fi
echo "newest: pip install --upgrade --upgrade-strategy eager -e . jupyter"
"$venv/bin/python" -m pip install -q --upgrade --upgrade-strategy eager -e . jupyter || { echo "newest: install failed" >&2; exit 2; }
# A kernel of the venv's own, found first (JUPYTER_PATH comes before the user's kernels), so no other Python runs the lessons.
"$venv/bin/python" -m ipykernel install --prefix "$venv" --name bborzan-newest --display-name "bborzan newest" >/dev/null || exit 2
export JUPYTER_PATH="$venv/share/jupyter" BBORZAN_FAST=1 PYTHONUNBUFFERED=1
installed=$(( $(date +%s) - start ))

echo "newest: installed in ${installed} s; versions:"
"$venv/bin/python" - <<'EOF' || exit 2
import sys, importlib.metadata as md
names = 'torch torchvision fastai fastcore fastprogress fastdownload numpy pandas scipy scikit-learn matplotlib nbconvert ipykernel'
print(f"  python {sys.version.split()[0]}; " + ', '.join(f"{n} {md.version(n)}" for n in names.split()))
EOF

work=$(mktemp -d "${TMPDIR:-/tmp}/bborzan-newest.XXXXXX")
cp -r nbs "$work/nbs"                  # the lessons read nbs/results and write their files beside them: in the copy
passed=0; failed=0; failures=()
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb")
  t0=$(date +%s)
  if (cd "$work/nbs" && "$venv/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
        --ExecutePreprocessor.kernel_name=bborzan-newest --output-dir "$work/out" "$name" >"$work/$name.log" 2>&1); then
    passed=$((passed + 1)); echo "PASS $name ($(( $(date +%s) - t0 )) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name ($(( $(date +%s) - t0 )) s); the end of its log:"
    tail -n 15 "$work/$name.log" | sed 's/^/    /'
  fi
done

echo "newest: executed notebooks and logs in $work/out and $work"
echo "newest: $passed passed, $failed failed in $(( $(date +%s) - start )) s (install ${installed} s)${failures:+; failed: ${failures[*]}}"
[ "$failed" = 0 ]
