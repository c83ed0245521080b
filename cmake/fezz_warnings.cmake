# Flags for our own targets (tests, examples, benchmarks), never for users of fezz::fezz.
add_library(fezz_project_options INTERFACE)
target_compile_options(fezz_project_options INTERFACE -Wall -Wextra -Wpedantic -Werror)
# Our own code keeps off Asio's deprecated APIs; users decide this for themselves.
target_compile_definitions(fezz_project_options INTERFACE BOOST_ASIO_NO_DEPRECATED)
if(FEZZ_SANITIZE)
  target_compile_options(fezz_project_options INTERFACE
    -fsanitize=${FEZZ_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(fezz_project_options INTERFACE -fsanitize=${FEZZ_SANITIZE})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND FEZZ_SANITIZE MATCHES "thread")
    # g++ 12 warns that TSan does not model the fences inside Asio's headers.
    target_compile_options(fezz_project_options INTERFACE -Wno-tsan)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND FEZZ_SANITIZE MATCHES "undefined")
    # clang 14's -fsanitize=function trips on coroutine frames.
    target_compile_options(fezz_project_options INTERFACE -fno-sanitize=function)
  endif()
endif()
