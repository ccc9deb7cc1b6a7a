# broker_test_labels(<target> <labels...>): labels for the tests of a
# gtest_discover_tests'ed <target> instantiated for both brokers
# (support/test_broker.h). The discovered names carry the instantiation
# prefix: Kafka/* get "<labels>;kafka", require the ctest fixture kafka_shared
# (one Apache Kafka broker for the whole ctest run; tests/support/CMakeLists.txt)
# and show a skip (jars not fetched) as skipped; every other test gets
# "<labels>;devbroker". gtest_discover_tests flattens a list-valued LABELS, so
# this is a second include file, read by ctest after the discovered tests.
function(broker_test_labels target)
  set(dev_labels ${ARGN} devbroker)
  set(kafka_labels ${ARGN} kafka)
  set(DEV_LABELS "${dev_labels}")
  set(KAFKA_LABELS "${kafka_labels}")
  set(TESTS_VAR ${target}_TESTS)
  set(SHARED_DIR ${CMAKE_BINARY_DIR}/kafka-shared)
  file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${target}_broker_labels.cmake CONTENT [=[
foreach(t IN LISTS @TESTS_VAR@)
  if(t MATCHES "^Kafka/")
    set_tests_properties("${t}" PROPERTIES LABELS "@KAFKA_LABELS@"
      FIXTURES_REQUIRED kafka_shared
      ENVIRONMENT "PAYMENTS_KAFKA_SHARED_DIR=@SHARED_DIR@"
      TIMEOUT 180 SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  else()
    set_tests_properties("${t}" PROPERTIES LABELS "@DEV_LABELS@")
  endif()
endforeach()
]=] @ONLY)
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES
               ${CMAKE_CURRENT_BINARY_DIR}/${target}_broker_labels.cmake)
endfunction()
