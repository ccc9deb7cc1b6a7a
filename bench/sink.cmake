# payments-sink benchmark: rows/s of PaymentsSinkTask (outbox on and off) against
# the floors (plain batched multi-row upserts of the same rows, unprepared and
# prepared; same server, same client library), interleaved batch by batch in one
# run; medians of the rounds. Starts a private PostgreSQL unless --uri is given.
# Run: <build>/bench/sink_bench [--rows 50000] [--batch 500] [--rounds 3] [--refunds 10]
#      [--prepare 0|1] [--uri postgresql://...]
if(TARGET payments_sink_lib)
  add_executable(sink_bench ${CMAKE_CURRENT_LIST_DIR}/sink_bench.cc)
  target_link_libraries(sink_bench PRIVATE payments_sink_lib)
  target_compile_definitions(sink_bench PRIVATE
    PG_SERVER_SCRIPT="${PROJECT_SOURCE_DIR}/scripts/pg-test-server.sh")
endif()
