# fezz_add_module(<target> SOURCES <source>...)
#
# Builds ordinary FEZZ_FUNCTION sources as a function module: a shared library
# that a Fezz host loads at run time (see docs/modules.md). Everything in it is
# hidden but one entry point, fezz_module_entry_v1, which says how the module was
# built and lists its functions; g++'s unique symbols are turned off so that the
# library can leave the process when the host closes it. The file is
# <target>.so, with no "lib" in front.
function(fezz_add_module target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "fezz_add_module(${target}): no SOURCES")
  endif()
  set(entry ${CMAKE_CURRENT_BINARY_DIR}/${target}_fezz_module_entry.cpp)
  file(GENERATE OUTPUT ${entry}
    CONTENT "// Made by fezz_add_module(): the module's entry point.\n#include <fezz/module.hpp>\nFEZZ_MODULE_ENTRY()\n")
  add_library(${target} MODULE ${arg_SOURCES} ${entry})
  target_link_libraries(${target} PRIVATE fezz::fezz)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  target_link_options(${target} PRIVATE LINKER:--no-undefined)
endfunction()
