// Reads a graph file (YAML) into a GraphDef, keeping every value's line and column.
#pragma once

#include <memory>
#include <string>

#include "framework/graph_def.hpp"

namespace fg {

// `file` is used in messages. Throws fg::Error for syntax errors and schema errors
// (unknown top-level keys, malformed inputs, nodes without name or op, ...).
std::shared_ptr<GraphDef> load_graph_file(const std::string& path);
std::shared_ptr<GraphDef> load_graph_string(const std::string& text,
                                            const std::string& file = "<string>");

}  // namespace fg
