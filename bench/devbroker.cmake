# devbroker throughput benchmark; included by the root CMakeLists.txt after
# add_subdirectory(src/devbroker).
if(TARGET devbroker_lib)
  if(NOT TARGET PkgConfig::RDKAFKA)
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
  endif()
  if(NOT TARGET CLI11::CLI11)
    find_package(CLI11 REQUIRED)
  endif()
  add_executable(devbroker_bench ${CMAKE_CURRENT_LIST_DIR}/devbroker_bench.cc)
  target_link_libraries(devbroker_bench PRIVATE devbroker_lib
                        PkgConfig::RDKAFKA CLI11::CLI11)
  target_compile_options(devbroker_bench PRIVATE -Wall -Wextra)
endif()
