# Payments benchmark (Google Benchmark): decisions/s of payments_core through
# the TopologyTestDriver (many customers; one hot customer).
# The realistic mix (BM_DecisionMix*) uses payments-loadgen's RequestGenerator.
if(TARGET benchmark::benchmark AND TARGET payments_core AND TARGET streams_topology
   AND TARGET payments_loadgen_lib)
  add_executable(payments_bench ${CMAKE_CURRENT_LIST_DIR}/payments_bench.cc)
  target_link_libraries(payments_bench PRIVATE payments_core streams_topology
                        payments_loadgen_lib benchmark::benchmark)
endif()
