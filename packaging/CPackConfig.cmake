# Packaging of IMP: install rules for the system files, and CPack settings.
#
# Included at the end of the top-level CMakeLists.txt. Binaries, SQL
# migrations and impd.conf.example are installed there and in apps/; this file
# adds what only a system package needs, and owns the man pages (installed
# gzip-compressed, as Debian policy asks).
#
#   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release
#   cmake --build build
#   cd build && cpack -G DEB          # imp_<version>-1_<arch>.deb
#   cd build && cpack -G RPM          # when rpmbuild is installed
#
# The system files go to fixed absolute places (/etc/imp, /lib/systemd/system,
# /usr/lib/sysusers.d, /usr/lib/tmpfiles.d) whatever the install prefix:
# they are where impd, systemd and the maintainer scripts look for them.
# CPack's DEB and RPM generators install through DESTDIR, so these paths land
# in the package, not on the build machine.
include_guard(GLOBAL)
include(GNUInstallDirs)

set(IMP_PACKAGING_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(IMP_PACKAGING_BINARY_DIR "${PROJECT_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${IMP_PACKAGING_BINARY_DIR}")

# --------------------------------------------------------------------------
# Compressed documentation: man pages and the Debian changelog
# (gzip -9n: maximum compression, no name or timestamp, reproducible).

find_program(IMP_GZIP gzip)

# imp_gzip_file(<source> <output>): build <output> from <source> with gzip -9n.
function(imp_gzip_file source output)
  add_custom_command(
    OUTPUT "${output}"
    COMMAND sh -c "\"$0\" -9 -n -c \"$1\" > \"$2\"" "${IMP_GZIP}" "${source}" "${output}"
    DEPENDS "${source}"
    COMMENT "Compressing ${source}"
    VERBATIM)
endfunction()

set(_imp_compressed_docs "")
foreach(_imp_page IN ITEMS impd.8 impctl.8 impd.conf.5)
  string(REGEX REPLACE "^.*\\.([0-9])$" "\\1" _imp_section "${_imp_page}")
  set(_imp_source "${PROJECT_SOURCE_DIR}/man/${_imp_page}")
  if(_imp_page STREQUAL "impctl.8")
    set(_imp_source "${IMPCTL_MAN_PAGE}")  # generated (apps/impctl/CMakeLists.txt)
  endif()
  if(IMP_GZIP)
    set(_imp_output "${IMP_PACKAGING_BINARY_DIR}/${_imp_page}.gz")
    imp_gzip_file("${_imp_source}" "${_imp_output}")
    list(APPEND _imp_compressed_docs "${_imp_output}")
    install(FILES "${_imp_output}" DESTINATION "${CMAKE_INSTALL_MANDIR}/man${_imp_section}")
  else()
    message(WARNING "gzip not found: man pages are installed uncompressed")
    install(FILES "${_imp_source}" DESTINATION "${CMAKE_INSTALL_MANDIR}/man${_imp_section}")
  endif()
endforeach()

if(IMP_GZIP)
  set(_imp_output "${IMP_PACKAGING_BINARY_DIR}/changelog.Debian.gz")
  imp_gzip_file("${IMP_PACKAGING_DIR}/changelog.Debian" "${_imp_output}")
  list(APPEND _imp_compressed_docs "${_imp_output}")
  install(FILES "${_imp_output}" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/imp")
endif()
add_custom_target(imp_compressed_docs ALL DEPENDS ${_imp_compressed_docs})
add_dependencies(imp_compressed_docs impctl_generated)

# --------------------------------------------------------------------------
# System files

# /etc/imp/impd.conf is a conffile (see packaging/conffiles for DEB and
# CPACK_RPM_USER_FILELIST for RPM): upgrades keep the administrator's edits.
install(FILES "${PROJECT_SOURCE_DIR}/etc/impd.conf" DESTINATION /etc/imp
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${PROJECT_SOURCE_DIR}/etc/impd.service" DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${IMP_PACKAGING_DIR}/imp.sysusers" DESTINATION /usr/lib/sysusers.d
        RENAME imp.conf PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${IMP_PACKAGING_DIR}/imp.tmpfiles" DESTINATION /usr/lib/tmpfiles.d
        RENAME imp.conf PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${IMP_PACKAGING_DIR}/copyright" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/imp"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# --------------------------------------------------------------------------
# CPack: common settings

set(CPACK_PACKAGE_NAME "imp")
set(CPACK_PACKAGE_VENDOR "IMP developers")
set(CPACK_PACKAGE_CONTACT "IMP developers <imp-dev@lists.imp-project.org>")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://imp-project.org/")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "instant messaging and presence node with SIP/XMPP federation")
set(CPACK_PACKAGE_DESCRIPTION
    "IMP is an IM and presence server node. Native users connect with XMPP
clients; partitioned intradomain federation carries availability and
instant messages to and from users of Microsoft Lync and OCS over SIP.

This package contains the node daemon impd, its control tool impctl, the
database schema migrations, a systemd unit and the manual pages. A single
node runs its own private MariaDB instance; a cluster shares one external
MariaDB or MySQL database.")
set(CPACK_PACKAGE_CHECKSUM SHA256)
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_VERBATIM_VARIABLES ON)

set(CPACK_GENERATOR "DEB")
find_program(RPMBUILD rpmbuild)
if(RPMBUILD)
  list(APPEND CPACK_GENERATOR "RPM")
endif()

set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/_CPack_Packages/" "\\.swp$")

# --------------------------------------------------------------------------
# DEB

set(CPACK_DEBIAN_PACKAGE_NAME "imp")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${CPACK_PACKAGE_HOMEPAGE_URL}")
# adduser: postinst falls back to it where systemd-sysusers is missing.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "mariadb-server-core (>= 1:10.5) | mysql-server-core-8.0, adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mariadb-client")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# CMake 3.25 does not mark files under /etc as conffiles by itself: the list
# is shipped as a control file, next to the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${IMP_PACKAGING_DIR}/conffiles"
    "${IMP_PACKAGING_DIR}/postinst"
    "${IMP_PACKAGING_DIR}/prerm"
    "${IMP_PACKAGING_DIR}/postrm")
# conffiles 0644, scripts 0755, whatever the checkout's file modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# --------------------------------------------------------------------------
# RPM

set(CPACK_RPM_PACKAGE_NAME "imp")
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE "Apache-2.0")
set(CPACK_RPM_PACKAGE_GROUP "Applications/Communications")
set(CPACK_RPM_PACKAGE_URL "${CPACK_PACKAGE_HOMEPAGE_URL}")
set(CPACK_RPM_PACKAGE_REQUIRES "mariadb-server")
# The package installs to fixed system paths: not relocatable.
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
# CPack marks every file installed to an absolute path as %config unless it
# is listed here (each entry needs a directive): only impd.conf is one.
set(CPACK_RPM_USER_FILELIST
    "%config(noreplace) /etc/imp/impd.conf"
    "%attr(0644,root,root) /lib/systemd/system/impd.service"
    "%attr(0644,root,root) /usr/lib/sysusers.d/imp.conf"
    "%attr(0644,root,root) /usr/lib/tmpfiles.d/imp.conf")
# Directories owned by the base system, not by this package.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /lib /lib/systemd /lib/systemd/system
    /usr/sbin /usr/lib/sysusers.d /usr/lib/tmpfiles.d
    /usr/share/man /usr/share/man/man5 /usr/share/man/man8)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE "${IMP_PACKAGING_DIR}/rpm/postinstall")
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE "${IMP_PACKAGING_DIR}/rpm/preuninstall")
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE "${IMP_PACKAGING_DIR}/rpm/postuninstall")

include(CPack)
