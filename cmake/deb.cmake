# The Debian package, built by CPack from the install rules (the one description of what ipwarm
# installs, shared with `cmake --install`):
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DIPWARM_TESTS=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)    # or: scripts/deb
#
# gives ipwarm_VERSION_ARCH.deb: the binary, both man pages, the docs and examples, the systemd
# units in /usr/lib/systemd/system (not enabled; systemd on Debian 12 reads /lib and /usr/lib
# alike), the maintainer scripts of packaging/deb/ (the
# system user and its directories; purge removes them), and Depends computed by dpkg-shlibdeps
# (package dpkg-dev) from the libraries the binary links, plus adduser and tzdata.
#
# Why CPack and not a debian/ directory: a distribution keeps its own debian/ directory, and an
# upstream one gets in its maintainer's way (dpkg-source cannot delete it, debhelper acts on
# every file in it). CPack builds an operator's .deb from the upstream tree without one.

set(CPACK_PACKAGE_NAME ipwarm)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "ipwarm developers <dev@ipwarm.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "warm up a new mail sending IP address, paced and watched")
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
# `make package_source`: the tree without git's files, build directories and scratch files
# (the patterns are matched against absolute paths, so they are anchored at the source tree).
set(CPACK_SOURCE_GENERATOR TGZ)
# Regex characters in the path are put in brackets, which no quoting level alters.
string(REGEX REPLACE "([.+*?()$|])" "[\\1]" src_re "${CMAKE_SOURCE_DIR}")
string(REGEX REPLACE "([.+*?()$|])" "[\\1]" bin_re "${CMAKE_BINARY_DIR}")
set(CPACK_SOURCE_IGNORE_FILES "^${bin_re}/" "^${src_re}/[.]git(/|$)" "^${src_re}/build[^/]*/"
                              "^${src_re}/tmp/" "/__pycache__/" "[.]db(-wal|-shm|[.]lock)?$")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # ipwarm_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, tzdata")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus-node-exporter")
# The long description; CPack puts the summary above it, a space before each line and a "."
# on the empty ones, as Debian's control files want.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "ipwarm warms up a new sending IP the way mailbox providers expect: it starts
slowly for each provider (Gmail, Microsoft, Yahoo, ...), grows a little each
clean sending day, and slows down by itself the moment a provider pushes back.

It reads a YAML warm-up plan, checks SPF, PTR, HELO, MX, block lists, DKIM and
DMARC before sending, sends paced test mail directly to each provider's MX or
through a relay, records every SMTP reply in SQLite, and reports deferral
statistics, an HTML report and Prometheus metrics.

The package adds the system user ipwarm (home /var/lib/ipwarm) and systemd
units that stay disabled until the operator enables ipwarm.timer.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/deb/postinst ${CMAKE_SOURCE_DIR}/packaging/deb/prerm
    ${CMAKE_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Debian wants the copyright file in the package's doc directory.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/deb/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Checked when cpack runs: the binary the units start (/usr/bin/ipwarm) is where the package puts
# it only in a tree configured for /usr.
set(CPACK_IPWARM_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_SOURCE_DIR}/cmake/deb-check.cmake)
include(CPack)
