// A small strict JSON parser (RFC 8259) for file headers such as the safetensors header.
// Objects keep their member order; duplicate keys, trailing commas, comments, leading zeros,
// bare control characters and nesting deeper than 64 levels are errors. Integers are kept as
// text so that sizes and offsets are read exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fg {

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;              // the number's text, or the (unescaped) string
  std::vector<JsonValue> items;  // array
  std::vector<std::pair<std::string, JsonValue>> members;  // object, in file order

  // "null", "boolean", "number", "string", "array", "object"
  std::string_view kind_name() const;
  // The number as an exact integer; false if it is not a number, has a fraction or exponent,
  // or does not fit into int64.
  bool as_int64(int64_t& out) const;
};

// Parses `text` (the whole input must be one value, surrounded only by whitespace).
// Throws fg::Error("malformed JSON at byte <n>: <what>") without file; callers add it.
JsonValue parse_json(std::string_view text);

}  // namespace fg
