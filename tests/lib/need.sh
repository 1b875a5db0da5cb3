# shellcheck shell=bash
# What a CLI test needs from the system, checked before it starts anything: when a tool is
# missing the test says which one and which Debian package has it, and exits 77, which ctest
# reports as "Skipped" (SKIP_RETURN_CODE in CMakeLists.txt) instead of a failure. scripts/deps
# test installs all of them. Source it, then:
#   need WHAT...     exits 77 unless every WHAT is there. WHAT is a command (sqlite3, openssl,
#                    chromium, promtool, man, dpkg-deb, ...), "dnsmasq" (looked for in the sbin
#                    directories too), "python3" (Debian's /usr/bin/python3, else python3 on
#                    PATH), "py:MODULE" (python3 can import MODULE), "file:PATH" (a file that a
#                    package installs) or "unit:NAME" (the unit test NAME was built: it fills
#                    states for some CLI tests; not built without cmocka).
# Sets NEED_PY to the python3 to use.

NEED_PY=/usr/bin/python3
[ -x "$NEED_PY" ] || NEED_PY=$(command -v python3 || echo /usr/bin/python3)

# need_package WHAT: the Debian package that provides WHAT.
need_package() {
  case $1 in
    dnsmasq) echo dnsmasq-base ;;
    chromium) echo chromium ;;
    promtool) echo prometheus ;;
    man) echo man-db ;;
    groff | nroff) echo groff-base ;;
    dpkg-deb) echo dpkg ;;
    python3) echo python3 ;;
    py:yaml) echo python3-yaml ;;
    py:dkim) echo python3-dkim ;;
    py:spf) echo python3-spf ;;
    py:*) echo "python3 (module ${1#py:})" ;;
    file:/usr/share/doc/python3-spf/*) echo python3-spf ;;
    unit:*) echo "libcmocka-dev, then rebuild" ;;
    *) echo "$1" ;;
  esac
}

need() {
  local what missing=() dir found
  for what in "$@"; do
    found=
    case $what in
      dnsmasq)
        for dir in /usr/sbin /sbin /usr/bin /usr/local/sbin; do
          [ -x "$dir/dnsmasq" ] && found=1 && break
        done ;;
      python3) [ -x "$NEED_PY" ] && found=1 ;;
      py:*) [ -x "$NEED_PY" ] && "$NEED_PY" -c "import ${what#py:}" 2>/dev/null && found=1 ;;
      file:*) [ -r "${what#file:}" ] && found=1 ;;
      unit:*) [ -x "${BUILDDIR:-/nonexistent}/${what#unit:}" ] && found=1 ;;
      chromium) { command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 && found=1 ;;
      *) command -v "$what" >/dev/null 2>&1 && found=1 ;;
    esac
    [ -n "$found" ] || missing+=("$what (Debian: $(need_package "$what"))")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local list
    list=$(printf '%s, ' "${missing[@]}")
    echo "skip: not installed: ${list%, } (scripts/deps test installs everything the tests use)"
    exit 77
  fi
}
