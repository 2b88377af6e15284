// Value readers shared by the configuration parsers (docs/yaml_schema.md).
#include "framework/config_value.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace fg {

Error error_at(const Value& v, const std::string& message) {
  Error e(message);
  e.at(v.loc);
  return e;
}

Error type_error(const Value& v, const std::string& what, const char* want) {
  return error_at(v, fmt::format("{} must be {}, got {}", what, want, v.describe()));
}

bool is_plain_scalar(const Value& v) {
  return v.kind == Value::Kind::scalar && !v.quoted;
}

double to_number(const Value& v, const std::string& what) {
  if (is_plain_scalar(v) && !v.scalar.empty()) {
    char* end = nullptr;
    const double out = std::strtod(v.scalar.c_str(), &end);
    if (end == v.scalar.c_str() + v.scalar.size() && std::isfinite(out)) return out;
  }
  throw type_error(v, what, "a finite number");
}

int64_t to_integer(const Value& v, const std::string& what) {
  int64_t out = 0;
  if (is_plain_scalar(v)) {
    const std::string& s = v.scalar;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size()) return out;
  }
  throw type_error(v, what, "an integer");
}

bool to_bool(const Value& v, const std::string& what) {
  if (is_plain_scalar(v)) {
    if (v.scalar == "true" || v.scalar == "True" || v.scalar == "TRUE") return true;
    if (v.scalar == "false" || v.scalar == "False" || v.scalar == "FALSE") return false;
  }
  throw type_error(v, what, "true or false");
}

std::string to_name(const Value& v, const std::string& what) {
  if (v.kind != Value::Kind::scalar || v.scalar.empty()) throw type_error(v, what, "a name");
  return v.scalar;
}

}  // namespace fg
