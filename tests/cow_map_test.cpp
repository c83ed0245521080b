#include <fezz/detail/cow_map.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>

using fezz::detail::cow_map;

TEST_CASE("cow_map: insert, assign, erase, find", "[cow_map]") {
  cow_map<int> m;
  CHECK(m.find("a") == nullptr);
  m.insert_or_assign("a", 1);
  m.insert_or_assign("b", 2);
  m.insert_or_assign("a", 3);
  REQUIRE(m.find("a") != nullptr);
  CHECK(*m.find("a") == 3);
  CHECK(m.size() == 2);
  CHECK(m.erase("a"));
  CHECK_FALSE(m.erase("a"));
  CHECK(m.find("a") == nullptr);
  CHECK(*m.find("b") == 2);
  CHECK(m.size() == 1);
}

TEST_CASE("cow_map agrees with std::map under random churn, and copies stay as they were",
          "[cow_map]") {
  cow_map<int> m;
  std::map<std::string, int> reference;
  std::mt19937 rng(7);
  std::vector<std::pair<cow_map<int>, std::map<std::string, int>>> snapshots;
  for (int step = 0; step < 20000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 500);
    if (rng() % 3 == 0) {
      CHECK(m.erase(key) == (reference.erase(key) == 1));
    } else {
      const int value = static_cast<int>(rng() % 1000);
      m.insert_or_assign(key, value);
      reference[key] = value;
    }
    if (step % 2000 == 0) {
      snapshots.emplace_back(m, reference);
    }
  }
  CHECK(m.size() == reference.size());
  for (int k = 0; k < 500; ++k) {
    const std::string key = "k" + std::to_string(k);
    const auto it = reference.find(key);
    const int* found = m.find(key);
    REQUIRE((found != nullptr) == (it != reference.end()));
    if (found != nullptr) {
      CHECK(*found == it->second);
    }
  }
  for (const auto& [copy, expected] : snapshots) {
    CHECK(copy.size() == expected.size());
    for (const auto& [key, value] : expected) {
      REQUIRE(copy.find(key) != nullptr);
      CHECK(*copy.find(key) == value);
    }
  }
}
