// Reading JSON file headers (the safetensors header) with nlohmann's parser (nlohmann-json3-dev)
// and the stricter rules such headers need: duplicate keys and nesting deeper than 64 levels
// are errors, objects keep their member order, and numbers keep their text, so that sizes and
// offsets are read exactly and an integer too large for 64 bits is reported as written.
// nlohmann checks the rest of RFC 8259 (trailing commas, comments, leading zeros, bare control
// characters, bad escapes and surrogates, invalid UTF-8 are all errors).
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
  std::string text;              // the number's text as written, or the (unescaped) string
  std::vector<JsonValue> items;  // array
  std::vector<std::pair<std::string, JsonValue>> members;  // object, in file order

  // "null", "boolean", "number", "string", "array", "object"
  std::string_view kind_name() const;
  // The number as an exact integer; false if it is not a number, has a fraction or exponent,
  // or does not fit into int64.
  bool as_int64(int64_t& out) const;
};

// Parses `text` (the whole input must be one value, surrounded only by whitespace).
// Throws fg::Error("malformed JSON at byte <n>: <what>") without file (n counts from 0);
// callers add it.
JsonValue parse_json(std::string_view text);

}  // namespace fg
