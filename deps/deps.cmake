# Finds grantd's Debian-packaged dependencies and builds llhttp (shipped by
# node-llhttp as C sources) as a static library. A missing package stops the
# configure step with one line naming it.
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "grantd: pkg-config not found - run deps/install.sh")
endif()

function(grantd_require_pc var module pkg)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "grantd: missing dependency ${pkg} - run deps/install.sh")
  endif()
endfunction()

grantd_require_pc(UV libuv libuv1-dev)
grantd_require_pc(LMDB lmdb liblmdb-dev)
grantd_require_pc(MSGPACK msgpack libmsgpack-dev)
grantd_require_pc(JANSSON jansson libjansson-dev)

find_path(BEARSSL_INCLUDE_DIR bearssl.h)
find_library(BEARSSL_LIBRARY bearssl)
if(NOT BEARSSL_INCLUDE_DIR OR NOT BEARSSL_LIBRARY)
  message(FATAL_ERROR "grantd: missing dependency libbearssl-dev - run deps/install.sh")
endif()
add_library(bearssl::bearssl UNKNOWN IMPORTED)
set_target_properties(bearssl::bearssl PROPERTIES
  IMPORTED_LOCATION "${BEARSSL_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${BEARSSL_INCLUDE_DIR}")

set(LLHTTP_SRC_DIR /usr/share/llhttp)
set(LLHTTP_INC_DIR /usr/share/include/llhttp)
if(NOT EXISTS ${LLHTTP_SRC_DIR}/llhttp.c OR NOT EXISTS ${LLHTTP_INC_DIR}/llhttp.h)
  message(FATAL_ERROR "grantd: missing dependency node-llhttp - run deps/install.sh")
endif()
add_library(llhttp STATIC ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c
  ${LLHTTP_SRC_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INC_DIR})
# Third-party code: build it warning-clean but without our -Werror set.
target_compile_options(llhttp PRIVATE -w)

if(GRANTD_BUILD_TESTS)
  grantd_require_pc(CMOCKA cmocka libcmocka-dev)
endif()
