# eos_copy: the throughput floor of bench/run.sh (an exactly-once identity copy
# on librdkafka alone) and its read_committed timer/counter helpers.
if(TARGET payments_tools_kafka)
  if(NOT TARGET CLI11::CLI11)
    find_package(CLI11 REQUIRED)
  endif()
  add_executable(eos_copy ${CMAKE_CURRENT_LIST_DIR}/eos_copy.cc)
  target_link_libraries(eos_copy PRIVATE payments_tools_kafka CLI11::CLI11)
  target_compile_options(eos_copy PRIVATE -Wall -Wextra)
endif()
