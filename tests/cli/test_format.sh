#!/usr/bin/env bash
# Every C file of the tree (src/, include/, tests/, bench/) is formatted as .clang-format says,
# checked by clang-format 14 (Debian 12's; another major version formats some constructs
# differently, so it is a skip, not a failure). A file that is not is named, with the command
# that fixes it.
set -u
: "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh"
need clang-format
. "$SRCDIR/tests/lib/assert.sh"

cf=clang-format
command -v clang-format-14 >/dev/null 2>&1 && cf=clang-format-14
version=$("$cf" --version)
case $version in
  *"version 14."*) ;;
  *)
    echo "skip: $cf is not version 14 ($version); .clang-format is checked with clang-format 14"
    exit 77
    ;;
esac

cd "$SRCDIR" || exit 1
mapfile -t files < <(find src include tests bench -type f \( -name '*.c' -o -name '*.h' \) | sort)
check "C files found (got ${#files[@]})" test "${#files[@]}" -gt 50

tmp=$(mktemp -d /tmp/ipwarm-format-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# One run over every file; its diagnostics ("FILE:LINE:COLUMN: error: code should be
# clang-formatted [-Wclang-format-violations]") name the files.
"$cf" --dry-run -Werror "${files[@]}" >/dev/null 2>"$tmp/out"
rc=$?
mapfile -t unformatted < <(sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' \
  "$tmp/out" | sort -u)
if [ "$rc" -eq 0 ] && [ ${#unformatted[@]} -eq 0 ]; then
  ok "every C file is formatted (${#files[@]} files, $cf)"
elif [ ${#unformatted[@]} -gt 0 ]; then
  bad "formatted as .clang-format says: ${unformatted[*]} (fix: $cf -i ${unformatted[*]})"
  head -n 20 "$tmp/out"
else
  bad "$cf ran (exit $rc): $(head -c 500 "$tmp/out")"
fi

# The check itself can fail: a file indented against the style is caught.
cp .clang-format "$tmp/.clang-format"
printf 'int main(void)\n{\n  return 0;\n}\n' >"$tmp/bad.c"
check "a badly indented file is refused" sh -c "! '$cf' --dry-run -Werror '$tmp/bad.c' 2>/dev/null"

finish
