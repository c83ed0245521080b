# Runs one step of the packaging tests (see CMakeLists.txt here). Usage:
#   cmake -DSTEP=install|find_package|module|add_subdirectory
#         -DFEZZ_SOURCE_DIR=<fezz tree> -DPACKAGE_TEST_DIR=<this dir> -DWORK_DIR=<scratch dir>
#         -DGENERATOR=<gen> [-DMAKE_PROGRAM=..] -DCXX_COMPILER=<c++> [-DCXX_FLAGS=..]
#         [-DCXX_COMPILER_LAUNCHER=..] [-DBUILD_TYPE=..] -P package_test.cmake
# Any failing step ends the script with FATAL_ERROR, which fails the ctest test.
cmake_minimum_required(VERSION 3.20)

foreach(var IN ITEMS STEP FEZZ_SOURCE_DIR PACKAGE_TEST_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "package_test.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")

# Settings every nested configure shares with the build that runs the test.
set(common_args -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
if(MAKE_PROGRAM)
  list(APPEND common_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CXX_FLAGS)
  list(APPEND common_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(CXX_COMPILER_LAUNCHER)
  list(APPEND common_args "-DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_COMPILER_LAUNCHER}")
endif()
if(BUILD_TYPE)
  list(APPEND common_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
  set(config_args --config "${BUILD_TYPE}")
else()
  set(config_args)
endif()

# run(<what> <command...>): runs the command, fails the test if it fails.
function(run what)
  string(TIMESTAMP start "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(TIMESTAMP stop "%s")
  math(EXPR seconds "${stop} - ${start}")
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "${what}: FAILED (${rc}) after ${seconds} s\n  ${command}\n${out}")
  endif()
  message(STATUS "${what}: ok (${seconds} s)")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

function(require_file path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "expected ${path} to exist")
  endif()
endfunction()

# A cache entry of a configured build tree.
function(cache_value build_dir name out_var)
  file(STRINGS "${build_dir}/CMakeCache.txt" line REGEX "^${name}:[A-Z]+=")
  string(REGEX REPLACE "^${name}:[A-Z]+=" "" value "${line}")
  set(${out_var} "${value}" PARENT_SCOPE)
endfunction()

# Configures, builds and runs the consumer with extra configure arguments.
function(build_and_run_consumer build_dir)
  file(REMOVE_RECURSE "${build_dir}")
  run("configure consumer (${STEP})"
      "${CMAKE_COMMAND}" -S "${PACKAGE_TEST_DIR}/consumer" -B "${build_dir}" ${common_args}
      -DCMAKE_EXPORT_COMPILE_COMMANDS=ON ${ARGN})
  run("build consumer (${STEP})" "${CMAKE_COMMAND}" --build "${build_dir}" ${config_args})
  run("run consumer (${STEP})" "${build_dir}/bin/fezz_consumer${CMAKE_EXECUTABLE_SUFFIX}")
  message(STATUS "${run_output}")
  run("run etcd consumer (${STEP})" "${build_dir}/bin/fezz_etcd_consumer${CMAKE_EXECUTABLE_SUFFIX}")
  message(STATUS "${run_output}")
endfunction()

if(STEP STREQUAL "install")
  # A fresh configure of the tree with only the library and its install rules.
  set(fezz_build "${WORK_DIR}/fezz-build")
  file(REMOVE_RECURSE "${fezz_build}" "${prefix}")
  run("configure fezz for install"
      "${CMAKE_COMMAND}" -S "${FEZZ_SOURCE_DIR}" -B "${fezz_build}" ${common_args}
      "-DCMAKE_INSTALL_PREFIX=${prefix}" -DFEZZ_BUILD_TESTS=OFF -DFEZZ_BUILD_EXAMPLES=OFF
      -DFEZZ_BUILD_BENCH=OFF -DFEZZ_INSTALL=ON)
  run("build fezz" "${CMAKE_COMMAND}" --build "${fezz_build}" ${config_args})
  run("install fezz" "${CMAKE_COMMAND}" --install "${fezz_build}" ${config_args})

  cache_value("${fezz_build}" CMAKE_INSTALL_LIBDIR libdir)
  if(NOT libdir STREQUAL "lib")
    message(FATAL_ERROR "expected CMAKE_INSTALL_LIBDIR 'lib' under ${prefix}, got '${libdir}'")
  endif()
  foreach(file IN ITEMS
          include/fezz/fezz.hpp include/fezz/function.hpp include/fezz/server.hpp
          lib/cmake/fezz/fezzConfig.cmake lib/cmake/fezz/fezzConfigVersion.cmake
          lib/cmake/fezz/fezzTargets.cmake share/doc/fezz/LICENSE)
    require_file("${prefix}/${file}")
  endforeach()
  # Every header of the tree is installed, host/ and detail/ included.
  file(GLOB_RECURSE source_headers RELATIVE "${FEZZ_SOURCE_DIR}/include" "${FEZZ_SOURCE_DIR}/include/*.hpp")
  foreach(header IN LISTS source_headers)
    require_file("${prefix}/include/${header}")
  endforeach()
  # The exported target must not point back into the source or build tree.
  file(GLOB exported "${prefix}/lib/cmake/fezz/*.cmake")
  foreach(file IN LISTS exported)
    file(READ "${file}" text)
    foreach(tree IN ITEMS "${FEZZ_SOURCE_DIR}/include" "${fezz_build}")
      string(FIND "${text}" "${tree}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${file} refers to ${tree}")
      endif()
    endforeach()
  endforeach()
  list(LENGTH source_headers count)
  message(STATUS "installed ${count} headers and the CMake package into ${prefix}")

elseif(STEP STREQUAL "find_package")
  require_file("${prefix}/lib/cmake/fezz/fezzConfig.cmake")
  # Use a moved copy of the install: the package must be relocatable.
  set(moved "${WORK_DIR}/moved-prefix")
  file(REMOVE_RECURSE "${moved}")
  file(COPY "${prefix}/" DESTINATION "${moved}")
  set(find_args "-DCMAKE_PREFIX_PATH=${moved}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)

  # The version file refuses a newer fezz than the one installed.
  set(version_build "${WORK_DIR}/version-check")
  file(REMOVE_RECURSE "${version_build}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${PACKAGE_TEST_DIR}/version_check" -B "${version_build}"
            ${common_args} ${find_args} -DFEZZ_WANTED_VERSION=9.0
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(fezz 9.0) succeeded against fezz 0.1:\n${out}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${out}")
  if(NOT flat MATCHES "requested version \"9\\.0\"" OR NOT flat MATCHES "version: 0\\.1\\.0")
    message(FATAL_ERROR "find_package(fezz 9.0) failed, but not because of the version:\n${out}")
  endif()
  message(STATUS "find_package(fezz 9.0): refused, as it should be")

  set(consumer_build "${WORK_DIR}/consumer-find-package")
  build_and_run_consumer("${consumer_build}" ${find_args})
  cache_value("${consumer_build}" fezz_DIR found_dir)
  if(NOT found_dir STREQUAL "${moved}/lib/cmake/fezz")
    message(FATAL_ERROR "consumer found fezz in '${found_dir}', not in ${moved}")
  endif()
  # The consumer compiled against the installed headers, not the source tree's.
  set(commands "${consumer_build}/compile_commands.json")
  if(EXISTS "${commands}")
    file(READ "${commands}" text)
    string(FIND "${text}" "${FEZZ_SOURCE_DIR}/include" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "consumer compiled against ${FEZZ_SOURCE_DIR}/include:\n${text}")
    endif()
    string(FIND "${text}" "${moved}/include" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "consumer did not compile against ${moved}/include:\n${text}")
    endif()
  endif()

elseif(STEP STREQUAL "module")
  # tests/module with fezz_add_module() from the installed package, into WORK_DIR/modules/.
  require_file("${prefix}/lib/cmake/fezz/fezz_module.cmake")
  set(module_build "${WORK_DIR}/module-build")
  file(REMOVE_RECURSE "${module_build}")
  run("configure modules" "${CMAKE_COMMAND}" -S "${FEZZ_SOURCE_DIR}/tests/module" -B "${module_build}"
      ${common_args} "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  run("build modules" "${CMAKE_COMMAND}" --build "${module_build}" ${config_args})
  file(REMOVE_RECURSE "${WORK_DIR}/modules")
  file(COPY "${module_build}/modules/" DESTINATION "${WORK_DIR}/modules")
  foreach(name IN ITEMS greeting_v1 greeting_v2 greeting_other_abi)
    require_file("${WORK_DIR}/modules/${name}.so")
  endforeach()
  # One exported symbol, the entry point; the functions' code stays hidden.
  find_program(NM nm)
  if(NM)
    run("list exported symbols" "${NM}" -D --defined-only "${WORK_DIR}/modules/greeting_v1.so")
    if(NOT run_output MATCHES " T fezz_module_entry_v1")
      message(FATAL_ERROR "greeting_v1.so does not export fezz_module_entry_v1:\n${run_output}")
    endif()
    if(run_output MATCHES "greeting|registration_list")
      message(FATAL_ERROR "greeting_v1.so exports its internals:\n${run_output}")
    endif()
  endif()

elseif(STEP STREQUAL "add_subdirectory")
  build_and_run_consumer("${WORK_DIR}/consumer-add-subdirectory"
                         "-DFEZZ_SOURCE_DIR=${FEZZ_SOURCE_DIR}")

else()
  message(FATAL_ERROR "package_test.cmake: unknown STEP '${STEP}'")
endif()
