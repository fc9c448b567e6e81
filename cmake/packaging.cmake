# Debian packages (cpack -G DEB in the build folder): cp-host (the binary, the plugin worker, the first-party
# plugins where the host searches them, packs/policies/schemas under share/cp-host, the man page and the
# serve unit) and cp-host-sdk-dev (the SDK headers, payload schemas, CMake package and pkg-config module
# third-party plugins build against). scripts/package.sh builds and checks them.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/packs ${PROJECT_SOURCE_DIR}/policies ${PROJECT_SOURCE_DIR}/schemas
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cp-host COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/contracts/examples DESTINATION ${CMAKE_INSTALL_DATADIR}/cp-host/contracts
  COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/cp-host.service DESTINATION lib/systemd/system COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/CHANGELOG.md ${PROJECT_SOURCE_DIR}/SECURITY.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cp-host RENAME copyright
  COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cp-host-sdk-dev
  RENAME copyright COMPONENT sdk)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cp-host)
set(CPACK_PACKAGE_VENDOR "cp-host")
set(CPACK_PACKAGE_CONTACT "cp-host maintainers <security@cp-host.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "governed control plane for AI coding agents")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
# The release build keeps line tables for backtraces; the package ships stripped binaries.
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL runtime sdk)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME cp-host)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION devel)
# The libraries the binaries link (libseccomp, re2, libstdc++) come from dpkg-shlibdeps; git runs every
# run's worktree; libpq is opened only for a PostgreSQL store, chromium only by the browser runner.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "git")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "libpq5")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SUGGESTS "chromium, postgresql")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
  "governed control plane for AI coding agents\n cp-host runs task contracts through runner plugins (codex, claude, tool, agents,\n browser), judges them with gate plugins, and leaves a sealed, auditable run bundle\n served by a REST API and a dashboard.")
set(CPACK_DEBIAN_SDK_PACKAGE_NAME cp-host-sdk-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_SDK_DESCRIPTION
  "SDK for cp-host plugins\n The C ABI headers, payload JSON Schemas, CMake package (CortexPilotSDK) and\n pkg-config module (cortexpilot-sdk) that third-party gates, runners and probes\n build against.")
include(CPack)
