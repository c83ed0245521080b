#pragma once

// Everything a program needs to write functions and host them.

#include <fezz/config.hpp>
#include <fezz/context.hpp>
#include <fezz/error.hpp>
#include <fezz/function.hpp>
#include <fezz/function_store.hpp>
#include <fezz/manifest.hpp>
#include <fezz/memory_store.hpp>
#include <fezz/request.hpp>
#include <fezz/response.hpp>
#include <fezz/route_table.hpp>
#include <fezz/server.hpp>
