#!/usr/bin/env bash
# The Debian package (cmake/deb.cmake), built with cpack from this build tree when the tree is
# configured for /usr (scripts/test's Release build is; skipped elsewhere): its name, control
# fields, file list, Depends (every library the binary loads, found by its own package, and
# adduser and tzdata; no sanitizer runtime), the maintainer scripts (the system user and its
# directories, purge, no unit enabled), the units it ships (ExecStart, User, the state
# directory the postinst makes) and the man pages. cpack refuses a tree configured for another
# prefix. Installing it on a fresh Debian 12 is scripts/test-deb (slow, network).
# Environment: IPWARM, SRCDIR, BUILDDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}" "${BUILDDIR:?set BUILDDIR}"
. "$SRCDIR/tests/lib/need.sh" && need cpack dpkg-deb dpkg-shlibdeps file ldd readelf
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILDDIR/CMakeCache.txt")
if [ "$prefix" != /usr ]; then
  echo "skip: this build installs into $prefix; the package is checked in a build configured with -DCMAKE_INSTALL_PREFIX=/usr (scripts/test's Release build)"
  exit 77
fi
. "$SRCDIR/tests/lib/assert.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILDDIR/CMakeCache.txt")
arch=$(dpkg --print-architecture)
deb=$work/pkg/ipwarm_${version}_${arch}.deb
(cd "$BUILDDIR" && cpack -G DEB -B "$work/pkg") >cpack.log 2>&1
rc=$?
check "cpack -G DEB: exit 0" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    cpack: /' cpack.log | tail -10
check "the package is ipwarm_${version}_${arch}.deb" test -s "$deb"
[ -s "$deb" ] || { finish; exit 1; }

# --- control ---------------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: ipwarm" test "$(field Package)" = ipwarm
check "Version: $version" test "$(field Version)" = "$version"
check "Architecture: $arch" test "$(field Architecture)" = "$arch"
check "Section: mail" test "$(field Section)" = mail
check "a Maintainer" test -n "$(field Maintainer)"
check "a one-line summary and a long description" \
  test "$(field Description | wc -l)" -gt 3 -a -n "$(field Description | head -n 1)"
depends=$(field Depends)
echo "    Depends: $depends"
# Every shared library the binary links (its NEEDED entries, found where ldd finds them), by the
# package that installs it here (dpkg -S), must be depended on: dpkg-shlibdeps' job.
ldd "$BUILDDIR/ipwarm" | awk '$3 ~ /^\// { print $1, $3 }' >libs.txt
for soname in $(readelf -d "$BUILDDIR/ipwarm" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  lib=$(awk -v s="$soname" '$1 == s { print $2 }' libs.txt)
  [ -n "$lib" ] || { bad "ldd does not find $soname"; continue; }
  real=$(readlink -f "$lib")
  owner=$(dpkg -S "$real" 2>/dev/null | head -n 1 | cut -d: -f1)
  [ -n "$owner" ] || owner=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
  if [ -z "$owner" ]; then
    bad "no package owns $lib, which the binary loads"
  elif printf '%s\n' "$depends" | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -qx "$owner"; then
    ok "Depends names $owner (for $(basename "$lib"))"
  else
    bad "Depends lacks $owner (for $(basename "$lib"))"
  fi
done
for pkg in adduser tzdata libcurl4 libssl3 libyaml-0-2 libsqlite3-0 libc-ares2; do
  check "Depends: $pkg" sh -c "printf '%s\n' '$depends' | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -qx '$pkg'"
done
check "no sanitizer runtime in Depends" sh -c "! printf '%s' '$depends' | grep -qE 'libasan|libubsan'"

# --- files -----------------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{ print $1, $2, $NF }' >list.txt
has_file() { # has_file PATH MODE: the package holds PATH as a regular file with MODE
  if grep -qxF -- "$2 root/root ./${1#/}" list.txt; then ok "file $1 ($2)"; else
    bad "file $1 ($2): $(grep -F -- "./${1#/}" list.txt || echo missing)"; fi
}
has_file /usr/bin/ipwarm -rwxr-xr-x
has_file /usr/share/man/man1/ipwarm.1.gz -rw-r--r--
has_file /usr/share/man/man5/ipwarm-plan.5.gz -rw-r--r--
has_file /usr/share/doc/ipwarm/copyright -rw-r--r--
has_file /usr/share/doc/ipwarm/operations.md -rw-r--r--
for f in README.md direct.yaml relay.yaml example.yaml providers.yaml message.txt seeds.csv; do
  has_file "/usr/share/ipwarm/config/$f" -rw-r--r--
done
for unit in ipwarm.service ipwarm.timer ipwarm-metrics.service ipwarm-metrics.timer; do
  has_file "/usr/lib/systemd/system/$unit" -rw-r--r--
done
check "nothing outside /usr (no /etc, no /var: the postinst makes those)" \
  test -z "$(awk '{ print $3 }' list.txt | grep -vE '^\./(usr(/.*)?)?$')"
check "no enablement link (no .wants directory) in the package" sh -c "! grep -q '\.wants' list.txt"
check "no sandbox files" sh -c "! grep -q sandbox/ list.txt"

mkdir root ctl
dpkg-deb -x "$deb" root && dpkg-deb -e "$deb" ctl
check "the packaged binary runs: --version says $version" \
  sh -c "'$work/root/usr/bin/ipwarm' --version | grep -qF '$version'"
check "the packaged binary is stripped" sh -c "file '$work/root/usr/bin/ipwarm' | grep -q ', stripped'"
for page in man1/ipwarm.1 man5/ipwarm-plan.5; do
  check "$page.gz is the source's page" \
    cmp -s <(gzip -dc "root/usr/share/man/$page.gz") "$SRCDIR/docs/man/${page#*/}"
done
units=root/usr/lib/systemd/system
check "ipwarm.service starts /usr/bin/ipwarm" grep -qxF \
  'ExecStart=/usr/bin/ipwarm -q -p /etc/ipwarm/ipwarm.yaml run --once' "$units/ipwarm.service"
check "ipwarm-metrics.service starts /usr/bin/ipwarm" grep -q '^ExecStart=/usr/bin/ipwarm ' \
  "$units/ipwarm-metrics.service"
for unit in ipwarm.service ipwarm-metrics.service; do
  check "$unit runs as the package's user" grep -qx 'User=ipwarm' "$units/$unit"
  check "$unit may write the postinst's state directory" \
    grep -qE '^ReadWritePaths=/var/lib/ipwarm( |$)' "$units/$unit"
done

# --- maintainer scripts ----------------------------------------------------------------------
for s in postinst prerm postrm; do
  check "$s: present, mode 0755" test "$(stat -c %a "ctl/$s" 2>/dev/null)" = 755
  check "$s: valid sh" sh -n "ctl/$s"
done
check "postinst: the system user, home /var/lib/ipwarm" \
  grep -qE 'adduser --system --group --home /var/lib/ipwarm .*ipwarm$' ctl/postinst
check "postinst: /var/lib/ipwarm 0750 ipwarm" grep -qF 'install -d -o ipwarm -g ipwarm -m 0750 /var/lib/ipwarm' ctl/postinst
check "postinst: /etc/ipwarm 0750 root:ipwarm" grep -qF 'install -d -o root -g ipwarm -m 0750 /etc/ipwarm' ctl/postinst
check "postinst: no unit enabled or started" \
  sh -c "! grep -v '^ *#' ctl/postinst | grep -qE 'enable|start|deb-systemd-invoke'"
check "prerm: stops the timers on removal" grep -q 'systemctl --system stop ipwarm.timer' ctl/prerm
check "postrm: purge removes the state" grep -qF 'rm -rf /var/lib/ipwarm' ctl/postrm
check "postrm: purge removes the user and group" \
  sh -c "grep -q 'deluser --system' ctl/postrm && grep -q 'delgroup --system' ctl/postrm"
check "the scripts match packaging/deb/" \
  sh -c "cmp -s ctl/postinst '$SRCDIR/packaging/deb/postinst' && cmp -s ctl/prerm '$SRCDIR/packaging/deb/prerm' && cmp -s ctl/postrm '$SRCDIR/packaging/deb/postrm'"

# --- a tree for another prefix is refused ----------------------------------------------------
(cd "$BUILDDIR" && cpack -G DEB -B "$work/pkg2" -D CPACK_IPWARM_INSTALL_PREFIX=/usr/local) >refuse.log 2>&1
check "cpack refuses a tree configured for /usr/local" test $? -ne 0
check "... and says to configure for /usr" grep -qF -- '-DCMAKE_INSTALL_PREFIX=/usr' refuse.log
finish
