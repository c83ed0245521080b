#include <fezz/detail/cow_vector.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using fezz::detail::cow_vector;

TEST_CASE("cow_vector: copies share until one writes, then each sees its own", "[cow_vector]") {
  cow_vector<std::string, 4> a;
  for (int i = 0; i < 10; ++i) {
    a.push_back("v" + std::to_string(i));
  }
  REQUIRE(a.size() == 10);
  const cow_vector<std::string, 4> b = a;
  const std::string* shared = &b[5];
  CHECK(&a[5] == shared);  // one storage for both

  a.mutate(5) = "changed";
  a.push_back("v10");
  CHECK(a[5] == "changed");
  CHECK(b[5] == "v5");
  CHECK(&b[5] == shared);  // the reader's element did not move
  CHECK(a.size() == 11);
  CHECK(b.size() == 10);
  CHECK(&a[0] == &b[0]);  // chunks nobody wrote are still shared

  cow_vector<std::string, 4> c = std::move(a);
  CHECK(c.size() == 11);
  CHECK(a.empty());  // NOLINT: a moved-from vector is empty
  c.clear();
  CHECK(b[9] == "v9");
}

TEST_CASE("cow_vector::of_size makes default elements", "[cow_vector]") {
  const auto v = cow_vector<int, 8>::of_size(20);
  REQUIRE(v.size() == 20);
  for (std::size_t i = 0; i < v.size(); ++i) {
    CHECK(v[i] == 0);
  }
}

TEST_CASE("cow_vector: readers on other threads while the writer writes its copy",
          "[cow_vector][race]") {
  cow_vector<int, 16> writer;
  for (int i = 0; i < 256; ++i) {
    writer.push_back(i);
  }
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};  // Catch's checks are not for other threads
  for (int round = 0; round < 200; ++round) {
    // Published to a reader, which reads it while the writer goes on, then drops it.
    cow_vector<int, 16> snapshot = writer;
    readers.emplace_back([snapshot = std::move(snapshot), round, &wrong] {
      long sum = 0;
      for (std::size_t i = 0; i < snapshot.size(); ++i) {
        sum += snapshot[i];
      }
      if (sum != 255 * 256 / 2 + round) {  // rounds before this one added one each
        ++wrong;
      }
    });
    writer.mutate(static_cast<std::size_t>(round)) += 1;
    if (readers.size() > 8) {
      for (auto& t : readers) {
        t.join();
      }
      readers.clear();
    }
  }
  for (auto& t : readers) {
    t.join();
  }
  CHECK(wrong == 0);
  CHECK(writer[0] == 1);
  CHECK(writer[199] == 200);
  CHECK(writer[255] == 255);
}
