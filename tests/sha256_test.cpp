#include <fezz/detail/sha256.hpp>

#include <catch2/catch.hpp>

#include <string>

TEST_CASE("sha256 gives FIPS 180-4's digests", "[sha256]") {
  using fezz::detail::sha256;
  CHECK(sha256::of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256::of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Two blocks, and the padding's edge: 56 bytes leave no room for the length.
  CHECK(sha256::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256::of(std::string(1'000'000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 is the same fed whole or in parts", "[sha256]") {
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += static_cast<char>(i * 7);
  }
  for (std::size_t split : {0, 1, 55, 56, 63, 64, 65, 200, 300}) {
    fezz::detail::sha256 parts;
    parts.update(text.substr(0, split)).update(text.substr(split));
    CHECK(parts.hex() == fezz::detail::sha256::of(text));
  }
}
