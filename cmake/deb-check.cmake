# Run by cpack (CPACK_PROJECT_CONFIG_FILE, cmake/deb.cmake) before it builds a package: a .deb
# installs under /usr, so the tree must have been configured for /usr, or the units it ships
# would start a binary that is not there.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_IPWARM_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR
          "ipwarm: the Debian package needs a build configured with -DCMAKE_INSTALL_PREFIX=/usr "
          "(this one installs into ${CPACK_IPWARM_INSTALL_PREFIX}); scripts/deb does it all")
endif()
