# Unit tests: tests/unit/<layer>/test_<module>.c, one cmocka executable each,
# run by CTest in its own process with a timeout. Integration tests:
# tests/integration/test_*.py drive the real grantd binary and the mock provider
# over loopback.
find_package(Python3 COMPONENTS Interpreter REQUIRED)

file(GLOB unit_layers LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/tests/unit/*)
foreach(layer_dir ${unit_layers})
  get_filename_component(layer ${layer_dir} NAME)
  file(GLOB unit_srcs CONFIGURE_DEPENDS ${layer_dir}/test_*.c)
  foreach(src ${unit_srcs})
    get_filename_component(t ${src} NAME_WE)
    set(exe unit_${layer}_${t})
    add_executable(${exe} ${src} ${CMAKE_SOURCE_DIR}/tests/unit/support.c)
    target_include_directories(${exe} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
    target_link_libraries(${exe} PRIVATE grantd_${layer} PkgConfig::CMOCKA)
    add_test(NAME ${layer}/${t} COMMAND ${exe})
    set_tests_properties(${layer}/${t} PROPERTIES TIMEOUT 300
      ENVIRONMENT "GRANTD_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")
  endforeach()
endforeach()

# The mock OAuth provider: a TLS server used by integration tests and benches.
file(GLOB mock_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/mock/*.c)
if(mock_srcs)
  add_executable(mock_provider ${mock_srcs})
  target_link_libraries(mock_provider PRIVATE grantd_net grantd_oauth)
endif()

# The layer and include-cycle check over src/ (see CMakeLists.txt).
get_property(layer_table GLOBAL PROPERTY GRANTD_LAYERS)
add_test(NAME layers COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tools/check_layers.py
  ${CMAKE_SOURCE_DIR}/src ${layer_table})
add_test(NAME layers_selftest COMMAND ${Python3_EXECUTABLE}
  ${CMAKE_SOURCE_DIR}/tools/test_check_layers.py)

# Files are opened only through base/file.h (regular, size-limited, off the
# loop at run time) or at the few places tools/check_file_reads.py lists.
add_test(NAME file_reads COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tools/check_file_reads.py
  ${CMAKE_SOURCE_DIR}/src)
add_test(NAME file_reads_selftest COMMAND ${Python3_EXECUTABLE}
  ${CMAKE_SOURCE_DIR}/tools/check_file_reads.py --selftest)

# Every C file under src/, tests/ and bench/ is as clang-format (the
# committed .clang-format, Debian's clang-format 14) makes it.
add_test(NAME format COMMAND sh ${CMAKE_SOURCE_DIR}/tools/check_format.sh)

file(GLOB it_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
foreach(src ${it_srcs})
  get_filename_component(t ${src} NAME_WE)
  add_test(NAME integration/${t}
    COMMAND ${Python3_EXECUTABLE} ${src})
  set_tests_properties(integration/${t} PROPERTIES TIMEOUT 600
    ENVIRONMENT "GRANTD_BIN=$<TARGET_FILE:grantd>;MOCK_BIN=${CMAKE_BINARY_DIR}/mock_provider;GRANTD_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp;PYTHONDONTWRITEBYTECODE=1")
endforeach()
