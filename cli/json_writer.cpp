#include "cli/json_writer.hpp"

#include <fmt/format.h>

namespace fg::cli {

JsonWriter& JsonWriter::value(double v) {
  if (!std::isfinite(v)) return null();
  separate();
  std::string s = fmt::format("{}", v);
  // fmt writes integral doubles without a fraction ("3"), which is valid JSON; "inf"/"nan" were
  // excluded above.
  out_ += s;
  return *this;
}

void JsonWriter::quote(std::string_view s) {
  out_ += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      case '\b':
        out_ += "\\b";
        break;
      case '\f':
        out_ += "\\f";
        break;
      default:
        if (c < 0x20)
          out_ += fmt::format("\\u{:04x}", c);
        else
          out_ += static_cast<char>(c);
    }
  }
  out_ += '"';
}

}  // namespace fg::cli
