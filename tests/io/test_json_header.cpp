// engine/json_header: nlohmann's parser with the header rules, on hostile text. Expected
// messages are written from the JSON grammar (RFC 8259), not taken from the parser.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "engine/json_header.hpp"
#include "engine/safetensors.hpp"
#include "framework/error.hpp"

namespace {

std::string error_of(const std::string& text) {
  try {
    fg::parse_json(text);
  } catch (const fg::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("json header: duplicate keys are errors at any depth, naming the key and its byte") {
  CHECK(error_of(R"({"a":1,"a":2})").find("at byte 7: duplicate key \"a\"") != std::string::npos);
  CHECK(error_of(R"({"o":{"k":1, "k":2}})").find("at byte 13: duplicate key \"k\"") !=
        std::string::npos);
  // an escaped quote inside the key does not confuse the byte
  CHECK(error_of(R"({"q\"":1,"q\"":2})").find("at byte 9: duplicate key \"q\"\"") !=
        std::string::npos);
  // the same key in sibling objects is fine
  CHECK(error_of(R"({"a":{"k":1},"b":{"k":2}})").empty());
}

TEST_CASE("json header: nesting is bounded at 64 levels without recursion") {
  CHECK(error_of(std::string(64, '[') + std::string(64, ']')).empty());
  CHECK(error_of(std::string(65, '[') + std::string(65, ']'))
            .find("at byte 64: nesting deeper than 64 levels") != std::string::npos);
  CHECK(error_of(std::string(1000000, '[')).find("nesting deeper than 64") != std::string::npos);
  CHECK(error_of("{\"a\":" + std::string(80, '[')).find("at byte 68") != std::string::npos);
}

TEST_CASE("json header: numbers keep their text, so huge integers are reported as written") {
  const fg::JsonValue v = fg::parse_json(
      R"([0, -7, 9223372036854775807, 18446744073709551615, 99999999999999999999, 2.5, 1e3])");
  REQUIRE(v.items.size() == 7);
  int64_t n = 0;
  CHECK((v.items[0].as_int64(n) && n == 0));
  CHECK((v.items[1].as_int64(n) && n == -7));
  CHECK((v.items[2].as_int64(n) && n == INT64_MAX));
  CHECK_FALSE(v.items[3].as_int64(n));  // beyond int64
  CHECK(v.items[3].text == "18446744073709551615");
  CHECK_FALSE(v.items[4].as_int64(n));
  CHECK(v.items[4].text == "99999999999999999999");
  CHECK(v.items[5].text == "2.5");
  CHECK_FALSE(v.items[6].as_int64(n));  // an exponent is not an integer here
  CHECK(error_of("[1e400]").find("number overflow") != std::string::npos);
}

TEST_CASE("json header: invalid UTF-8, control characters and bad escapes are errors") {
  CHECK(error_of("{\"a\":\"\xff\"}").find("ill-formed UTF-8") != std::string::npos);
  CHECK(error_of("{\"a\":\"\xc3\"}").find("malformed JSON at byte") != std::string::npos);
  CHECK(error_of("{\"a\":\"x\ny\"}").find("malformed JSON at byte") != std::string::npos);
  CHECK(error_of(R"({"a":"\ud800"})").find("surrogate") != std::string::npos);
  CHECK(error_of(R"({"a\q":1})").find("unknown escape '\\q'") != std::string::npos);
  // the echo of the input is left out of the message (it may be long or not text)
  CHECK(error_of("{\"a\":\"\xff\"}").find("last read") == std::string::npos);
}

TEST_CASE("json header: members keep file order; strings are unescaped") {
  const fg::JsonValue v = fg::parse_json(R"( {"z":1, "a":"\u00e9\n", "m":[true,null]} )");
  REQUIRE(v.members.size() == 3);
  CHECK(v.members[0].first == "z");
  CHECK(v.members[1].first == "a");
  CHECK(v.members[1].second.text == "\xc3\xa9\n");
  CHECK(v.members[2].second.items[0].boolean);
  CHECK(v.members[2].second.items[1].kind == fg::JsonValue::Kind::null);
  CHECK(error_of("").find("at byte 0") != std::string::npos);
  CHECK(error_of("[1,2,]").find("trailing comma in array") != std::string::npos);
  CHECK(error_of("{} x").find("unexpected text after") != std::string::npos);
  CHECK(error_of("// c\n{}").find("malformed JSON") != std::string::npos);  // no comments
  CHECK(error_of("[01]").find("malformed JSON") != std::string::npos);      // no leading zeros
}

TEST_CASE("json header: writing a name that is not UTF-8 is an error naming the file") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("fg_json_utf8_" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  fg::Tensor t(fg::DType::f32, {2});
  try {
    fg::write_safetensors(path, {{"bad\xff", t}});
    FAIL("expected an error");
  } catch (const fg::Error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find("not valid UTF-8") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(path));
  // a UTF-8 name round-trips through the header
  fg::write_safetensors(path, {{"caf\xc3\xa9.w", t}});
  CHECK(fg::read_safetensors(path).tensors.count("caf\xc3\xa9.w") == 1);
  std::filesystem::remove(path);
}
