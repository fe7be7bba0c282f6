# libFuzzer harnesses: tests/fuzz/fuzz_<name>.c, one per parser that sees
# outside bytes, each linked with fuzz_support.c. Built only with
# -DGRANTD_FUZZ=ON and clang (see the top-level CMakeLists.txt). CTest
# replays each harness's stored corpus (tests/fuzz/corpus/<name>/) and then
# mutates it for a fixed number of runs with a fixed seed (replay.sh), so a
# regression on a known input fails the build; run_long.sh runs them long.
file(GLOB fuzz_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
list(REMOVE_ITEM fuzz_srcs ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_support.c)
set(GRANTD_FUZZ_CI_RUNS 2000 CACHE STRING "mutation runs per harness after the corpus replay in CTest")
add_custom_target(fuzzers)
foreach(src ${fuzz_srcs})
  get_filename_component(stem ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${stem})
  add_executable(${stem} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_support.c)
  target_include_directories(${stem} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${stem} PRIVATE grantd_api)
  target_link_options(${stem} PRIVATE -fsanitize=fuzzer)
  add_dependencies(fuzzers ${stem})
  add_test(NAME fuzz/${name}
    COMMAND sh ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.sh $<TARGET_FILE:${stem}> ${name}
            ${CMAKE_SOURCE_DIR}/tests/fuzz ${CMAKE_BINARY_DIR}/fuzz-work ${GRANTD_FUZZ_CI_RUNS})
  set_tests_properties(fuzz/${name} PROPERTIES TIMEOUT 600)
endforeach()
