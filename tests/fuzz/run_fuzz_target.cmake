# The CTest of one fuzz target (see CMakeLists.txt beside this file):
#   cmake -DFUZZER=<exe> -DSEEDS=<dir> -DWORK_DIR=<dir> -DSECONDS=<n> [-DMAX_LEN=<n>]
#         -P run_fuzz_target.cmake
# Fuzzes a fresh copy of the seed corpus for SECONDS and fails on any finding;
# a crashing input is left in WORK_DIR/ as crash-*, leak-*, timeout-* or oom-*.

foreach(var IN ITEMS FUZZER SEEDS WORK_DIR SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzz_target.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
file(COPY ${SEEDS}/ DESTINATION ${WORK_DIR}/corpus)

set(max_len_flag "")
if(MAX_LEN)
  set(max_len_flag -max_len=${MAX_LEN})
endif()
# One input taking 10 s is a hang; libFuzzer checks for leaks after each input by default.
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 ${max_len_flag}
          -print_final_stats=1 -artifact_prefix=${WORK_DIR}/ ${WORK_DIR}/corpus
  WORKING_DIRECTORY ${WORK_DIR}
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  file(GLOB findings ${WORK_DIR}/crash-* ${WORK_DIR}/leak-* ${WORK_DIR}/timeout-*
       ${WORK_DIR}/oom-*)
  message(FATAL_ERROR "${FUZZER} failed (${result}); reproduce with: ${FUZZER} ${findings}")
endif()
