// Reads a graph file (YAML) into a GraphDef, keeping every value's line and column.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "framework/graph_def.hpp"

namespace fg {

// Limits on an (untrusted) graph file; docs/limits.md. Aliases (*name) are rejected, and so is
// text after the first YAML document.
constexpr uint64_t kMaxGraphFileBytes = 16u << 20;  // 16 MiB
constexpr size_t kMaxGraphNodes = 100'000;

// `file` is used in messages. Throws fg::Error for syntax errors and schema errors
// (unknown top-level keys, malformed inputs, nodes without name or op, ...) and beyond the
// limits. load_graph_file reads regular files only (a FIFO or device is an error, not a hang).
std::shared_ptr<GraphDef> load_graph_file(const std::string& path);
std::shared_ptr<GraphDef> load_graph_string(const std::string& text,
                                            const std::string& file = "<string>");

}  // namespace fg
