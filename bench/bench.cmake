# Benchmarks: every bench/*_bench.c is an executable. They print figures and
# never assert on time.
file(GLOB bench_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/*_bench.c)
foreach(src ${bench_srcs})
  get_filename_component(b ${src} NAME_WE)
  add_executable(${b} ${src})
  target_link_libraries(${b} PRIVATE grantd_api)
endforeach()
