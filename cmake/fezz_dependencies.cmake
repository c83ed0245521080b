# Fezz's dependencies, all from Debian's packages. fezzConfig.cmake.in
# finds the same set for installed users.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG)
find_package(nlohmann_json 3.10 REQUIRED CONFIG)
find_package(fmt 9 REQUIRED CONFIG)
find_package(spdlog 1.10 REQUIRED CONFIG)
find_package(OpenSSL 1.1 REQUIRED)  # for fezz::etcd only
