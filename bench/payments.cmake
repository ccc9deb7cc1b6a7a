# Payments benchmark (Google Benchmark): decisions/s of payments_core through
# the TopologyTestDriver (many customers; one hot customer).
if(TARGET benchmark::benchmark AND TARGET payments_core AND TARGET streams_topology)
  add_executable(payments_bench ${CMAKE_CURRENT_LIST_DIR}/payments_bench.cc)
  target_link_libraries(payments_bench PRIVATE payments_core streams_topology benchmark::benchmark)
endif()
