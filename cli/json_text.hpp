// The CLI's machine-readable output (bench --json, --trace, run's manifest) is built with
// nlohmann::ordered_json (members in the order written) and printed by json_text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace fg::cli {

// 2-space indentation and a final newline; non-finite numbers are written as null, bytes that
// are not UTF-8 (from names in a graph file) as U+FFFD, so printing never fails.
inline std::string json_text(const nlohmann::ordered_json& value) {
  return value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace fg::cli
