# Runtime benchmark: a stateful topology against librdkafka's mock cluster.
# Run: <build>/bench/runtime_bench [records] [keys] [exactly_once_v2|at_least_once] [commit.interval.ms]
if(TARGET streams_runtime AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/runtime_bench.cc)
  add_executable(runtime_bench ${CMAKE_CURRENT_LIST_DIR}/runtime_bench.cc)
  target_link_libraries(runtime_bench PRIVATE streams_runtime spdlog::spdlog)
endif()
