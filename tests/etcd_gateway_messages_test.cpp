#include <fezz/detail/base64.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/line_splitter.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace etcd = fezz::etcd;

namespace {

std::string read_data(const std::string& name) {
  std::ifstream in(std::string(FEZZ_TEST_DATA_DIR) + "/etcd/" + name, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The chunk bodies of a recorded chunked HTTP body (headers, if any, skipped).
std::vector<std::string> chunks_of(std::string raw) {
  if (raw.rfind("HTTP/", 0) == 0) {
    raw.erase(0, raw.find("\r\n\r\n") + 4);
  }
  std::vector<std::string> chunks;
  std::size_t at = 0;
  while (at < raw.size()) {
    const auto eol = raw.find("\r\n", at);
    if (eol == std::string::npos) {
      break;
    }
    const auto size = std::stoul(raw.substr(at, eol - at), nullptr, 16);
    if (size == 0) {
      break;
    }
    chunks.push_back(raw.substr(eol + 2, size));
    at = eol + 2 + size + 2;
  }
  return chunks;
}

template <class T>
T ok(const etcd::gateway_result<T>& result) {
  if (etcd::failed(result)) {
    FAIL("unexpected error: " << std::get<1>(result).message);
  }
  return std::get<0>(result);
}

template <class T>
etcd::gateway_error error_of(const etcd::gateway_result<T>& result) {
  REQUIRE(etcd::failed(result));
  return std::get<1>(result);
}

}  // namespace

TEST_CASE("base64 round-trips and refuses what is not base64", "[etcd][gateway]") {
  CHECK(fezz::detail::base64_encode("") == "");
  CHECK(fezz::detail::base64_encode("/fezz/functions/hello") == "L2ZlenovZnVuY3Rpb25zL2hlbGxv");
  CHECK(fezz::detail::base64_encode("/fezz/functions/") == "L2ZlenovZnVuY3Rpb25zLw==");
  CHECK(fezz::detail::base64_encode("/fezz/functions/a") == "L2ZlenovZnVuY3Rpb25zL2E=");
  CHECK(fezz::detail::base64_decode("L2ZlenovZnVuY3Rpb25zMA==") == "/fezz/functions0");
  CHECK(fezz::detail::base64_decode("L2ZlenovZnVuY3Rpb25zMA") == "/fezz/functions0");
  CHECK(fezz::detail::base64_decode("AA==") == std::string(1, '\0'));
  CHECK(fezz::detail::base64_decode("") == "");
  CHECK_FALSE(fezz::detail::base64_decode("not base64!"));
  CHECK_FALSE(fezz::detail::base64_decode("A"));
  CHECK_FALSE(fezz::detail::base64_decode("QQ=Q"));

  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    std::string bytes(random() % 40, '\0');
    for (auto& b : bytes) {
      b = static_cast<char>(random() % 256);
    }
    CHECK(fezz::detail::base64_decode(fezz::detail::base64_encode(bytes)) == bytes);
  }
}

TEST_CASE("a prefix's range end increments its last byte", "[etcd][gateway]") {
  CHECK(etcd::prefix_range_end("/fezz/functions/") == "/fezz/functions0");
  CHECK(etcd::prefix_range_end("/fezz/nodes/") == "/fezz/nodes0");
  CHECK(etcd::prefix_range_end("a\xff") == "b");
  CHECK(etcd::prefix_range_end("\xff\xff") == std::string(1, '\0'));
  CHECK(etcd::prefix_range_end("") == std::string(1, '\0'));
}

TEST_CASE("request bodies are what the gateway expects", "[etcd][gateway]") {
  etcd::range_options paged;
  paged.range_end = "/fezz/functions0";
  paged.limit = 500;
  paged.revision = 12;
  CHECK(
      etcd::range_request("/fezz/functions/", paged) ==
      R"({"key":"L2ZlenovZnVuY3Rpb25zLw==","limit":"500","range_end":"L2ZlenovZnVuY3Rpb25zMA==","revision":"12"})");
  CHECK(etcd::range_request("k") == R"({"key":"aw=="})");
  CHECK(etcd::put_request("k", "v", 42) == R"({"key":"aw==","lease":"42","value":"dg=="})");
  CHECK(
      etcd::create_if_absent_request("k", "v") ==
      R"({"compare":[{"create_revision":"0","key":"aw==","result":"EQUAL","target":"CREATE"}],)"
      R"("failure":[{"request_range":{"key":"aw=="}}],"success":[{"request_put":{"key":"aw==","value":"dg=="}}]})");
  CHECK(
      etcd::compare_and_swap_request("k", "v", 4) ==
      R"({"compare":[{"key":"aw==","mod_revision":"4","result":"EQUAL","target":"MOD"}],)"
      R"("failure":[{"request_range":{"key":"aw=="}}],"success":[{"request_put":{"key":"aw==","value":"dg=="}}]})");
  CHECK(
      etcd::put_if_lease_request("k", "v", 9) ==
      R"({"compare":[{"key":"aw==","lease":"9","result":"EQUAL","target":"LEASE"}],)"
      R"("failure":[{"request_range":{"key":"aw=="}}],"success":[{"request_put":{"key":"aw==","lease":"9","value":"dg=="}}]})");
  CHECK(etcd::delete_range_request("k") == R"({"key":"aw==","prev_kv":true})");
  CHECK(etcd::lease_grant_request(10) == R"({"TTL":"10"})");
  CHECK(etcd::lease_keepalive_request(2324035749842743837) == R"({"ID":"2324035749842743837"})");
  CHECK(etcd::lease_revoke_request(5) == R"({"ID":"5"})");
  CHECK(etcd::authenticate_request("root", "pw\"") == R"({"name":"root","password":"pw\""})");
  etcd::watch_options watch;
  watch.range_end = "/fezz/functions0";
  watch.start_revision = 19;
  watch.prev_kv = true;
  watch.progress_notify = true;
  CHECK(
      etcd::watch_create_request("/fezz/functions/", watch) ==
      R"({"create_request":{"key":"L2ZlenovZnVuY3Rpb25zLw==","prev_kv":true,"progress_notify":true,"range_end":"L2ZlenovZnVuY3Rpb25zMA==","start_revision":"19"}})");
}

TEST_CASE("range responses from etcd 3.4.23 parse", "[etcd][gateway]") {
  const auto page = ok(etcd::parse_range_response(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"5","raft_term":"2"},"kvs":[{"key":"L2ZlenovZnVuY3Rpb25zL2VjaG8=","create_revision":"5","mod_revision":"5","version":"1"}],"more":true,"count":"2"})"));
  CHECK(page.revision == 5);
  CHECK(page.more);
  CHECK(page.count == 2);
  REQUIRE(page.kvs.size() == 1);
  CHECK(page.kvs[0].key == "/fezz/functions/echo");
  CHECK(page.kvs[0].value.empty());
  CHECK(page.kvs[0].mod_revision == 5);

  const auto missing = ok(etcd::parse_range_response(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"5","raft_term":"2"}})"));
  CHECK(missing.kvs.empty());
  CHECK_FALSE(missing.more);
  CHECK(missing.count == 0);

  const auto full = ok(etcd::parse_range_response(
      R"({"header":{"revision":"8"},"kvs":[{"key":"L2ZlenovZnVuY3Rpb25zL2hlbGxv","create_revision":"4","mod_revision":"6","version":"2","value":"eyJtYW5pZmVzdCI6eyJpZCI6ImhlbGxvIn19"}],"count":"1"})"));
  CHECK(full.kvs.at(0).value == R"({"manifest":{"id":"hello"}})");
  CHECK(full.kvs.at(0).create_revision == 4);
  CHECK(full.kvs.at(0).version == 2);
}

TEST_CASE("txn responses: succeeded, and absent meaning failed", "[etcd][gateway]") {
  const auto won = ok(etcd::parse_txn_response(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"7"}}}]})"));
  CHECK(won.succeeded);
  CHECK(won.revision == 7);
  CHECK(won.kvs.empty());

  const auto lost = ok(etcd::parse_txn_response(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"7"},"kvs":[{"key":"L2ZlenovZnVuY3Rpb25zL3dvcmxk","create_revision":"7","mod_revision":"7","version":"1"}],"count":"1"}}]})"));
  CHECK_FALSE(lost.succeeded);
  REQUIRE(lost.kvs.size() == 1);
  CHECK(lost.kvs[0].key == "/fezz/functions/world");
  CHECK(lost.kvs[0].mod_revision == 7);
}

TEST_CASE("delete, lease and auth responses parse", "[etcd][gateway]") {
  const auto deleted = ok(etcd::parse_delete_response(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"},"deleted":"1","prev_kvs":[{"key":"L2ZlenovZnVuY3Rpb25zL3dvcmxk","create_revision":"7","mod_revision":"7","version":"1","value":"eyJtYW5pZmVzdCI6eyJpZCI6IndvcmxkIiwidmVyc2lvbiI6IjEifX0="}]})"));
  CHECK(deleted.deleted == 1);
  CHECK(deleted.prev_kvs.at(0).value == R"({"manifest":{"id":"world","version":"1"}})");
  CHECK(
      ok(etcd::parse_delete_response(
             R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"}})"))
          .deleted == 0);

  const auto grant = ok(etcd::parse_lease_response(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"},"ID":"2324035749842743835","TTL":"10"})"));
  CHECK(grant.id == 2324035749842743835);
  CHECK(grant.ttl == 10);
  const auto alive = ok(etcd::parse_lease_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"9","raft_term":"2"},"ID":"2324035749842743837","TTL":"10"}})"));
  CHECK(alive.ttl == 10);
  const auto gone = ok(etcd::parse_lease_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"9","raft_term":"2"},"ID":"12345"}})"));
  CHECK(gone.id == 12345);
  CHECK(gone.ttl == 0);

  CHECK(
      ok(etcd::parse_auth_response(
             R"({"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"token":"abc.42"})"))
          .token == "abc.42");
  CHECK(
      ok(etcd::parse_empty_response(
             R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"21","raft_term":"5"}})"))
          .revision == 21);
}

TEST_CASE("both error shapes are read, and malformed input is named", "[etcd][gateway]") {
  const auto compacted = error_of(etcd::parse_range_response(
      R"({"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11})"));
  CHECK(compacted.code == etcd::grpc_code::out_of_range);
  CHECK(compacted.message == "etcdserver: mvcc: required revision has been compacted");
  CHECK_FALSE(compacted.malformed);

  const auto lease = error_of(etcd::parse_empty_response(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"));
  CHECK(lease.code == etcd::grpc_code::not_found);

  const auto closing = error_of(etcd::parse_watch_response(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}})"));
  CHECK(closing.code == etcd::grpc_code::unavailable);
  CHECK(closing.message == "transport is closing");
  const auto no_leader = error_of(etcd::parse_watch_response(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})"));
  CHECK(no_leader.message == "etcdserver: no leader");

  CHECK(error_of(etcd::parse_watch_response(R"({"error":{"grpc_code":14,"http_code":503}})"))
            .message == "etcd answered an error with code 14");  // found by the fuzzer
  CHECK(error_of(etcd::parse_range_response("404 page not found")).malformed);
  CHECK(error_of(etcd::parse_range_response("[]")).malformed);
  CHECK(error_of(etcd::parse_range_response(R"({"kvs":[{"key":"not base64!"}]})")).malformed);
  CHECK(error_of(etcd::parse_range_response(R"({"header":{"revision":"x"}})")).malformed);
  CHECK(error_of(etcd::parse_range_response(R"({"header":{"revision":"99999999999999999999"}})"))
            .malformed);
  CHECK(error_of(etcd::parse_txn_response(R"({"succeeded":"yes"})")).malformed);
  CHECK(error_of(etcd::parse_watch_response(R"({"result":{"events":[{"type":"BOGUS","kv":{}}]}})"))
            .malformed);
  CHECK(error_of(etcd::parse_watch_response(R"({"result":{"events":[{}]}})")).malformed);
  CHECK(error_of(etcd::parse_watch_response(R"({"result":3})")).malformed);
  CHECK(error_of(etcd::parse_auth_response(R"({"header":{}})")).malformed);
  CHECK(error_of(etcd::parse_watch_response(R"({"error":[1]})")).malformed);
}

TEST_CASE("watch messages: created, events, progress and the compaction cancel",
          "[etcd][gateway]") {
  const auto created = ok(etcd::parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"9","raft_term":"2"},"created":true}})"));
  CHECK(created.created);
  CHECK(created.revision == 9);
  CHECK_FALSE(created.is_progress());

  const auto progress = ok(etcd::parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"17","raft_term":"3"}}})"));
  CHECK(progress.is_progress());
  CHECK(progress.revision == 17);

  const auto canceled = ok(etcd::parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","raft_term":"2"},"canceled":true,"compact_revision":"12"}})"));
  CHECK(canceled.canceled);
  CHECK(canceled.compact_revision == 12);
  CHECK(canceled.revision == 0);
  CHECK_FALSE(canceled.is_progress());

  const auto multiplexed = ok(etcd::parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"16","raft_term":"2"},"watch_id":"-1"}})"));
  CHECK(multiplexed.watch_id == -1);

  // A lease's expiry: a PUT with its lease, then the DELETE with prev_kv, in one message.
  const auto expiry = ok(etcd::parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"15","raft_term":"2"},"events":[{"kv":{"key":"L2Zlenovbm9kZXMvbjE=","create_revision":"9","mod_revision":"9","version":"1","value":"eyJhZGRyIjoiMTAuMC4wLjE6ODA4MCIsInN0YXRlIjoic2VydmluZyIsInN0YXJ0ZWQiOiIyMDI2LTEyLTAxVDIxOjMwOjAwWiJ9","lease":"2324035749842743837"}},{"type":"DELETE","kv":{"key":"L2Zlenovbm9kZXMvbjE=","mod_revision":"15"},"prev_kv":{"key":"L2Zlenovbm9kZXMvbjE=","create_revision":"9","mod_revision":"9","version":"1","value":"eyJhZGRyIjoiMTAuMC4wLjE6ODA4MCIsInN0YXRlIjoic2VydmluZyIsInN0YXJ0ZWQiOiIyMDI2LTEyLTAxVDIxOjMwOjAwWiJ9","lease":"2324035749842743837"}}]}})"));
  REQUIRE(expiry.events.size() == 2);
  CHECK(expiry.events[0].type == etcd::watch_event::kind::put);
  CHECK(expiry.events[0].kv.key == "/fezz/nodes/n1");
  CHECK(expiry.events[0].kv.lease == 2324035749842743837);
  CHECK(expiry.events[0].kv.value ==
        R"({"addr":"10.0.0.1:8080","state":"serving","started":"2026-12-01T21:30:00Z"})");
  CHECK_FALSE(expiry.events[0].prev_kv);
  CHECK(expiry.events[1].type == etcd::watch_event::kind::remove);
  CHECK(expiry.events[1].kv.mod_revision == 15);
  CHECK(expiry.events[1].kv.value.empty());
  REQUIRE(expiry.events[1].prev_kv);
  CHECK(expiry.events[1].prev_kv->mod_revision == 9);
}

TEST_CASE("the recorded watch stream splits into its messages in any slicing", "[etcd][gateway]") {
  const auto chunks = chunks_of(read_data("06-watch-raw.txt"));
  REQUIRE(chunks.size() == 6);
  std::string body;
  for (const auto& c : chunks) {
    body += c;
  }

  auto split = [](const std::string& data, const std::vector<std::size_t>& cuts) {
    etcd::line_splitter splitter;
    std::vector<std::string> lines;
    std::size_t at = 0;
    for (std::size_t cut : cuts) {
      REQUIRE(splitter.feed(std::string_view(data).substr(at, cut - at)));
      while (auto line = splitter.next()) {
        lines.emplace_back(*line);
      }
      at = cut;
    }
    REQUIRE(splitter.feed(std::string_view(data).substr(at)));
    while (auto line = splitter.next()) {
      lines.emplace_back(*line);
    }
    CHECK(splitter.pending() == 0);
    return lines;
  };

  const auto whole = split(body, {});
  REQUIRE(whole.size() == 6);
  std::vector<std::int64_t> revisions;
  for (const auto& line : whole) {
    revisions.push_back(ok(etcd::parse_watch_response(line)).revision);
  }
  CHECK(revisions == std::vector<std::int64_t>{9, 10, 11, 12, 13, 14});
  CHECK(ok(etcd::parse_watch_response(whole[4])).events.size() == 2);

  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < body.size(); ++i) {
    every_byte.push_back(i);
  }
  CHECK(split(body, every_byte) == whole);

  std::mt19937 random(11);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 1 + random() % 300; at < body.size(); at += 1 + random() % 300) {
      cuts.push_back(at);
    }
    CHECK(split(body, cuts) == whole);
  }
}

TEST_CASE("a 20 KB event split from its newline across chunks is one message", "[etcd][gateway]") {
  const auto chunks = chunks_of(read_data("13-watch-bigchunk.raw"));
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[1].size() == 0x4f08);
  CHECK(chunks[1].back() != '\n');  // the newline is the next chunk, alone
  CHECK(chunks[2] == "\n");

  etcd::line_splitter splitter;
  std::vector<std::string> lines;
  for (const auto& chunk : chunks) {
    REQUIRE(splitter.feed(chunk));
    while (auto line = splitter.next()) {
      lines.emplace_back(*line);
    }
  }
  REQUIRE(lines.size() == 2);
  CHECK(ok(etcd::parse_watch_response(lines[0])).created);
  const auto big = ok(etcd::parse_watch_response(lines[1]));
  REQUIRE(big.events.size() == 1);
  CHECK(big.events[0].kv.key == "/fezz/big");
  CHECK(big.events[0].kv.mod_revision == 22);
  CHECK(big.events[0].kv.value.size() == 15000);
  CHECK(big.events[0].kv.value.find_first_not_of('a') == std::string::npos);
}

TEST_CASE("the stream's in-band error after SIGTERM is one message", "[etcd][gateway]") {
  auto raw = read_data("11-watch-on-term.raw");
  raw = raw.substr(0, raw.find("curl rc"));
  const auto chunks = chunks_of(raw);
  REQUIRE(chunks.size() == 2);
  etcd::line_splitter splitter;
  REQUIRE(splitter.feed(chunks[0] + chunks[1]));
  REQUIRE(splitter.next());
  CHECK_FALSE(splitter.next());  // the error has no newline: the body's end ends it
  const auto error = splitter.finish();
  REQUIRE(error);
  CHECK_FALSE(splitter.finish());
  CHECK(error_of(etcd::parse_watch_response(*error)).message == "transport is closing");
}

TEST_CASE("the line splitter bounds what it buffers", "[etcd][gateway]") {
  etcd::line_splitter small(16);
  CHECK(small.feed("0123456789\nabc"));
  CHECK(small.next() == "0123456789");
  CHECK_FALSE(small.next());
  CHECK(small.feed("defghijklmno"));  // 15 bytes open: still within the limit
  CHECK(small.pending() == 15);
  CHECK_FALSE(small.feed("pq"));  // 17 without a newline: refused
  CHECK(small.overflowed());
  CHECK_FALSE(small.feed("\n"));
  CHECK_FALSE(small.next());

  etcd::line_splitter whole_line(4);
  CHECK_FALSE(whole_line.feed("12345\n"));  // over the limit even though complete

  etcd::line_splitter later_line(4);
  CHECK(later_line.feed("ab\n123456\ncd\n"));
  CHECK(later_line.next() == "ab");
  CHECK_FALSE(later_line.next());  // the second line is over the limit
  CHECK(later_line.overflowed());

  etcd::line_splitter crlf;
  CHECK(crlf.feed("a\r\n\n\nb\n"));
  CHECK(crlf.next() == "a");
  CHECK(crlf.next() == "b");
  CHECK_FALSE(crlf.next());

  // Feeding a long message a byte at a time stays linear and keeps only what is open.
  etcd::line_splitter bytes(etcd::line_splitter::default_max_line);
  const std::string message(200000, 'x');
  for (char c : message) {
    REQUIRE(bytes.feed(std::string_view(&c, 1)));
    REQUIRE_FALSE(bytes.next());
  }
  REQUIRE(bytes.feed("\n"));
  CHECK(bytes.next()->size() == message.size());
  CHECK(bytes.pending() == 0);
}
