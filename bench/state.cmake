# State benchmarks (Google Benchmark): put+commit throughput, point reads, scans.
if(TARGET benchmark::benchmark AND TARGET streams_state)
  add_executable(state_bench ${CMAKE_CURRENT_LIST_DIR}/state_bench.cc)
  target_link_libraries(state_bench PRIVATE streams_state benchmark::benchmark)
endif()
