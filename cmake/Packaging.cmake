# Install rules and CPack (issue 13, item 5): `make package` builds
# build/keyfence_<version>_<arch>.deb with the binary (stripped), the systemd
# unit, the example config (a conffile under /etc/keyfence) and the docs.
# Runtime dependencies come from dpkg-shlibdeps (the shared libraries the binary
# links), so the package installs on Debian 12 with apt alone.
include(GNUInstallDirs)

install(TARGETS keyfence RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The unit of deploy/systemd, pointing at the packaged binary.
file(READ ${PROJECT_SOURCE_DIR}/deploy/systemd/keyfence.service _kf_unit)
string(REPLACE "/usr/local/bin/keyfence" "/usr/bin/keyfence" _kf_unit "${_kf_unit}")
file(WRITE ${CMAKE_BINARY_DIR}/packaging/keyfence.service "${_kf_unit}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/deploy/systemd/keyfence.service)
install(FILES ${CMAKE_BINARY_DIR}/packaging/keyfence.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/examples/keyfence.yaml DESTINATION /etc/keyfence)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/deploy/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        RENAME DEPLOY.md)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/examples/keyfence.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME keyfence)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "keyfence maintainers <keyfence@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "namespace-enforcing multi-tenant Redis proxy")
set(CPACK_PACKAGE_DESCRIPTION "keyfence gives every app its own namespace of one shared Redis \
(standalone, Cluster or Sentinel): keys and channels rewritten, commands checked, limits and \
quotas enforced.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-tools")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles ${PROJECT_SOURCE_DIR}/deploy/debian/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
