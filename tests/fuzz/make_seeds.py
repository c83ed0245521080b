#!/usr/bin/env python3
"""Writes the seed corpora in corpus/<target>/ beside this file.

Each seed is a small, meaningful input in the format its target reads (see
the comment at the top of each *_fuzz.cpp). The files are committed; run this
again after changing a seed here. Crash inputs kept as regression seeds are
committed as they were found (named regression-*) and are not written here.
"""

import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def write(target, name, data):
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode("latin-1"))


# request_reader_fuzz: the byte stream, then 11 control bytes: the 8 slice sizes, the last
# slice first (`slices` here is in feed order), then the body limit, the header limit
# (16 + 4 * byte) and the target limit (1 + byte).
def reader_seed(name, stream, slices=(255,) * 8, body=255, header=255, target=255):
    assert len(slices) == 8
    control = bytes(reversed(slices)) + bytes([body, header, target])
    write("request_reader_fuzz", name, stream.encode("latin-1") + control)


GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
BYTE_BY_BYTE = (1,) * 8
UNEVEN = (3, 0, 7, 1, 13, 0, 2, 5)

reader_seed("get", GET)
reader_seed("get_byte_by_byte", GET, BYTE_BY_BYTE)
reader_seed("get_with_query_and_headers",
            "GET /api/users/42?x=1&name=J%C3%B6rg HTTP/1.1\r\nHost: example.com\r\n"
            "User-Agent: seed\r\nAccept: */*\r\nX-Request-Id: abc-123\r\n\r\n", UNEVEN)
reader_seed("pipelined_gets", GET + "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
            "HEAD /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", UNEVEN)
reader_seed("pipelined_post_then_get",
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + GET, UNEVEN)
reader_seed("post_content_length",
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
            "Content-Length: 11\r\n\r\nhello world")
reader_seed("chunked",
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", UNEVEN)
reader_seed("chunked_extensions_and_trailer",
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5;name=value;flag\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Checksum: 1\r\n\r\n")
reader_seed("chunked_then_get",
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n" + GET, BYTE_BY_BYTE)
reader_seed("chunked_upper_case_size",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
            "1F\r\n" + "x" * 31 + "\r\n0\r\n\r\n")
reader_seed("smuggle_content_length_then_chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
            "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("smuggle_chunked_then_content_length",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            "8\r\nSMUGGLED\r\n0\r\n\r\n")
reader_seed("smuggle_gzip_then_chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
reader_seed("smuggle_chunked_then_identity",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("smuggle_empty_transfer_encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n")
reader_seed("smuggle_transfer_encoding_in_http10",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            "GET /admin HTTP/1.0\r\n\r\n")
reader_seed("two_content_lengths",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
reader_seed("content_length_list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello")
reader_seed("content_length_signed",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n")
reader_seed("content_length_huge",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n")
reader_seed("obs_fold", "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n  two\r\n\tthree\r\n\r\n")
reader_seed("obs_fold_transfer_encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n")
reader_seed("huge_chunk_size",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "ffffffffffffffffff\r\nabc\r\n0\r\n\r\n")
reader_seed("chunk_size_just_over_body_limit",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            "11\r\n" + "b" * 17 + "\r\n0\r\n\r\n", body=16)
reader_seed("chunk_line_never_ends",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + "e" * 300,
            UNEVEN)
reader_seed("trailer_never_ends",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
            + "X-T: 1\r\n" * 60, UNEVEN, header=20)
reader_seed("absolute_form",
            "GET http://example.com/hello?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
reader_seed("authority_form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
reader_seed("asterisk_form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("http10_keep_alive",
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n", UNEVEN)
reader_seed("http10_expect_continue",
            "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
reader_seed("expect_continue",
            "PUT /file HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc")
reader_seed("expect_unknown", "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n")
reader_seed("no_host_and_two_hosts",
            "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
reader_seed("target_high_bytes", "GET /caf\xe9/\x80\xff HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("target_percent_ff", "GET /users/%FF?name=%C3%28 HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("bare_lf_lines", "GET / HTTP/1.1\nHost: a\n\n")
reader_seed("bare_cr_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n")
reader_seed("nul_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n")
reader_seed("space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n")
reader_seed("leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("lower_case_method", "get / HTTP/1.1\r\nHost: a\r\n\r\n")
reader_seed("custom_method", "PURGE /cache HTTP/1.1\r\nHost: a\r\n\r\n"
            "DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
reader_seed("version_http2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
reader_seed("version_http09", "GET /\r\n")
reader_seed("version_unknown", "GET / HTTP/1.2\r\nHost: a\r\n\r\nGET / HTTP/3.0\r\n\r\n")
reader_seed("tls_client_hello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + "\x00" * 32)
reader_seed("target_over_limit", "GET /" + "t" * 40 + " HTTP/1.1\r\nHost: a\r\n\r\n", UNEVEN,
            target=31)
reader_seed("request_line_over_header_limit",
            "GET /" + "t" * 60 + " HTTP/1.1\r\nHost: a\r\n\r\n", (4, 200, 1, 1, 1, 1, 1, 1),
            header=4, target=200)
reader_seed("header_over_limit",
            "GET /short HTTP/1.1\r\nHost: a\r\nX-Big: " + "h" * 100 + "\r\n\r\n",
            (7, 255, 1, 1, 1, 1, 1, 1), header=16)
reader_seed("body_over_limit",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n" + "b" * 20, body=10)
reader_seed("slowloris_partial_header", "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaa", BYTE_BY_BYTE)
# Kept from the fuzzer's first runs: a request line cut after its fourth byte, then a
# header section over the limit (414 instead of 431 before the fix in request_reader.hpp).
reader_seed("cut_request_line_then_header_over_limit",
            "GET /short HTTP/1.1\r\nX-Big: " + "a" * 60 + "\r\n\r\n",
            (4, 255, 255, 255, 255, 255, 255, 255), header=8)


# uri_fuzz: one option byte (bit 0: also build a query from the rest), then the text.
def uri_seed(name, text, build_query=False):
    write("uri_fuzz", name, ("1" if build_query else "0") + text)


uri_seed("escapes_mixed_case", "a%2Fb%2fc")
uri_seed("escapes_utf8", "%E2%82%AC%c3%b6")
uri_seed("escapes_malformed", "a%2Fb%zz%4")
uri_seed("escape_then_hex", "%4z%41%%41")
uri_seed("percent_alone", "%")
uri_seed("percent_at_end", "abc%4")
uri_seed("escape_nul", "%00")
uri_seed("plus_signs", "a+b++c%2B")
uri_seed("query_repeated_name", "a=1&b=2&a=3")
uri_seed("query_bare_name", "flag&x=1")
uri_seed("query_encoded_name", "a%20b=c+d&a+b=e")
uri_seed("query_equals_in_value", "x=1=2")
uri_seed("query_empty_pairs", "&&=&a=&=b&")
uri_seed("query_escaped_separators", "k%26=v%3D&k=%26")
uri_seed("query_invalid_utf8", "name=%C3%28&x=%FF")
uri_seed("target_path_only", "/users/42")
uri_seed("target_with_query", "/users/42?name=J%C3%B6rg&verbose")
uri_seed("target_two_question_marks", "/a?b?c=d")
uri_seed("target_query_empty", "/a?")
uri_seed("target_only_query", "?x=1")
uri_seed("target_absolute_form", "http://example.com/hello?x=1")
uri_seed("target_high_bytes", "/caf\xe9?q=\xff")
uri_seed("built_query_from_text", "name=value", build_query=True)
uri_seed("built_query_binary", "\x03abc\x02\x00\x01\xff\x04%&=+", build_query=True)
uri_seed("built_query_repeated", "\x01a\x01b\x01a\x01c", build_query=True)


# route_table_fuzz: commands, one a line (see route_table_fuzz.cpp).
def routes_seed(name, *lines):
    write("route_table_fuzz", name, "\n".join(lines) + "\n")


routes_seed("readme_example",
            "+ GET /api/users users-list", "+ GET /api/users/:id user-get",
            "+ GET /api/* api-catch-all", "? GET /api/users/123", "? GET /api/users",
            "? GET /api/other/x", "? GET /api", "? GET /apis", "? GET /", "? POST /api/users/1")
routes_seed("priority_beats_specificity",
            "+ GET /api/users/:id user-get", "+ GET /api/* catch-all 10", "? GET /api/users/1",
            "+ GET /api/* catch-all -1", "? GET /api/users/1")
routes_seed("head_falls_back_to_get",
            "+ GET /page get-page", "+ ANY /page any-page", "? HEAD /page", "? GET /page",
            "? DELETE /page", "+ HEAD /page head-page", "? HEAD /page")
routes_seed("any_and_custom_methods",
            "+ ANY /hook any-hook", "+ PURGE /cache purge", "+ MKCOL /dav/:dir mkcol",
            "? PURGE /cache", "? MKCOL /dav/x", "? OPTIONS /hook", "? purge /cache",
            "? ANY /hook")
routes_seed("static_parameter_wildcard_order",
            "+ GET /files/*rest all", "+ GET /files/:name one", "+ GET /files/readme readme",
            "+ GET /files/:name/raw raw", "? GET /files/readme", "? GET /files/other",
            "? GET /files/a/raw", "? GET /files/a/b/c", "? GET /files", "? GET /files/")
routes_seed("wildcard_matching_nothing",
            "+ GET /api api-root", "+ GET /api/* api-rest", "+ GET /* everything",
            "? GET /api", "? GET /api/", "? GET /", "? GET /other/path")
routes_seed("longer_wildcard_wins",
            "+ GET /a/* short", "+ GET /a/b/* long", "? GET /a/b", "? GET /a/b/c", "? GET /a/c")
routes_seed("parameters_percent_decoded",
            "+ GET /users/:id/files/*path files", "? GET /users/J%C3%B6rg/files/a%2Fb/c%20d",
            "? GET /users/%zz/files/", "? GET /users/a+b/files/%4")
routes_seed("canonical_patterns_replace",
            "+ GET //a//b/ first", "+ GET /a/b second 3", "? GET /a/b", "- GET /a//b",
            "? GET /a/b")
routes_seed("same_pattern_other_methods",
            "+ GET /x get", "+ POST /x post", "+ PUT /x put", "+ DELETE /x delete",
            "? PATCH /x", "? POST /x", "- POST /x", "? POST /x")
routes_seed("invalid_patterns",
            "+ GET users no-slash", "+ GET / root", "+ GET /a/: empty-name",
            "+ GET /a/*/b wildcard-not-last", "+ GET /:id/:id duplicate",
            "+ GET /:rest/*rest duplicate-with-wildcard", "+ GET /* star", "+ GET /:*/* star-twice",
            "? GET /anything")
routes_seed("invalid_methods",
            "+ get /a lower", "+ G-T /a dash", "+ ABCDEFGHIJKLMNOPQ /a long", "+  /a empty",
            "+ ABCDEFGHIJKLMNOP /a sixteen", "? ABCDEFGHIJKLMNOP /a")
routes_seed("remove_function",
            "+ GET /a f1", "+ GET /b f1", "+ GET /c f2", "x f1", "? GET /a", "? GET /c", "x f1",
            "x f3")
routes_seed("remove_and_add_back",
            "+ GET /a/:id f1", "- GET /a/:other", "- GET /a/:id", "? GET /a/1", "+ GET /a/:id f2",
            "? GET /a/1")
routes_seed("copy_then_change",
            "+ GET /a f1", "+ GET /b/:x f2", "? GET /a", "? GET /b/1", "c", "+ GET /c f3", "c")
routes_seed("clear_then_reuse", "+ GET /a f1", "? GET /a", "0", "? GET /a", "+ GET /a f2",
            "? GET /a")
routes_seed("many_siblings", *[f"+ GET /s{i}/:id f{i % 3}" for i in range(20)],
            "? GET /s7/x", "? GET /s19/y", "? GET /s20/z", "x f1", "? GET /s7/x")
routes_seed("deep_pattern", "+ GET /a/b/c/d/e/f/g/h deep", "+ GET /a/:b/c/:d/e/*rest mixed",
            "? GET /a/b/c/d/e/f/g/h", "? GET /a/x/c/y/e/f/g", "? GET /a/x/c/y/e")
routes_seed("paths_with_odd_bytes", "+ GET /caf\xe9/:x odd", "? GET /caf\xe9/%FF",
            "? GET //caf\xe9///y//", "? GET /caf\xe9/with space")
routes_seed("equal_priority_insertion_order",
            "+ GET /p/:a first", "+ ANY /p/:b second", "+ HEAD /p/:c third", "? HEAD /p/1",
            "? GET /p/1", "? POST /p/1")
routes_seed("extreme_priorities", "+ GET /a/* low -2147483648", "+ GET /a/b high 2147483647",
            "+ GET /a/:x mid 99999999999", "? GET /a/b", "? GET /a/c")
routes_seed("allowed_methods_405", "+ GET /r get", "+ POST /r post", "+ PUT /r/:id put",
            "? DELETE /r", "? DELETE /r/1", "? DELETE /q")
