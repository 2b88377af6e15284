#include "framework/summary.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>

namespace fg {

std::string group_digits(int64_t value) {
  // the magnitude as unsigned, so INT64_MIN has one too
  const uint64_t magnitude =
      value < 0 ? ~static_cast<uint64_t>(value) + 1 : static_cast<uint64_t>(value);
  std::string digits = std::to_string(magnitude);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

namespace {

// A FLOP count as an integer (digits grouped for the table) while it fits into int64, else in
// scientific notation (no undefined conversion of a double beyond the int64 range).
std::string flops_text(double flops, bool grouped) {
  if (!(flops < 9.2e18)) return fmt::format("{:.4e}", flops);
  const int64_t whole = std::llround(flops);
  return grouped ? group_digits(whole) : std::to_string(whole);
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum))
    throw Error(fmt::format("the {} overflows 64-bit arithmetic", what));
  return sum;
}

// Types for the summary: concrete where the dims are given, symbolic otherwise.
std::vector<TensorType> summary_types(const CompiledGraph& g, const SummaryOptions& o,
                                      bool& concrete) {
  std::vector<TensorType> symbolic;
  for (const auto& t : g.tensors()) symbolic.push_back(t.type);
  bool need_dims = false;
  for (const auto& in : g.def().inputs)
    for (Dim d : in.shape) need_dims = need_dims || d == kDynamic;
  concrete = false;
  if (need_dims && o.dims.empty()) {
    if (o.batch > 0)
      for (auto& t : symbolic)
        if (!t.shape.empty()) t.shape[0] = o.batch;
    return symbolic;
  }
  auto types = g.bind(g.concrete_input_shapes(o.batch > 0 ? o.batch : 1, o.dims));
  concrete = true;
  return types;
}

// A string inside double quotes in DOT: quotes and backslashes escaped, control bytes as \\u.
std::string quoted_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      out += fmt::format("\\u{:04x}", c);
    else
      out += c;
  }
  return out;
}

}  // namespace

Summary summarize(const CompiledGraph& g, const SummaryOptions& o) {
  Summary s;
  s.name = g.def().name;
  bool concrete = false;
  std::vector<TensorType> types = summary_types(g, o, concrete);
  s.concrete = concrete;
  s.total_flops = concrete ? 0 : -1;
  // per-sample stats need concrete per-sample dims; batch is irrelevant
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const CompiledNode& n = g.nodes()[i];
    SummaryRow row;
    row.node = n.def->name;
    row.op = n.def->op;
    row.shape = types[n.outputs[0]].shape;
    if (o.batch <= 0) row.shape[0] = kDynamic;
    row.weights_of = n.def->weights_of;
    if (row.weights_of.empty())
      for (const auto& w : g.node_weights(i, types)) {
        int64_t count = num_elements(w.shape);
        row.params = checked_add(row.params, count, "parameter count");
        if (w.trainable && n.def->trainable)
          s.trainable_params = checked_add(s.trainable_params, count, "parameter count");
      }
    if (concrete) {
      row.flops = g.node_stats(i, types).flops;
      s.total_flops += row.flops;
    }
    row.inputs = n.def->inputs;
    row.branch = n.branch;
    s.total_params = checked_add(s.total_params, row.params, "parameter count");
    s.rows.push_back(row);
  }
  return s;
}

std::string format_summary_table(const Summary& s) {
  std::vector<std::array<std::string, 5>> cells;
  cells.push_back({"Node (op)", "Output shape", "Param #", "FLOPs", "Connected to"});
  for (const auto& r : s.rows) {
    std::string inputs;
    for (size_t i = 0; i < r.inputs.size(); ++i) inputs += (i ? ", " : "") + r.inputs[i];
    cells.push_back({fmt::format("{} ({})", r.node, r.op), format_shape(r.shape),
                     r.weights_of.empty() ? group_digits(r.params) : "shared: " + r.weights_of,
                     r.flops < 0 ? "?" : flops_text(r.flops, true), inputs});
  }
  std::array<size_t, 5> width{};
  for (const auto& row : cells)
    for (size_t c = 0; c < 5; ++c) width[c] = std::max(width[c], row[c].size());
  size_t total_width = 0;
  for (size_t w : width) total_width += w + 2;
  std::string out = fmt::format("Model: \"{}\"\n", s.name);
  std::string rule(total_width, '-');
  std::string heavy(total_width, '=');
  out += rule + "\n";
  for (size_t r = 0; r < cells.size(); ++r) {
    std::string line;
    for (size_t c = 0; c < 5; ++c) {
      bool right = c == 2 || c == 3;
      line += right ? fmt::format("{:>{}}  ", cells[r][c], width[c])
                    : fmt::format("{:<{}}  ", cells[r][c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (r == 0) out += heavy + "\n";
  }
  out += heavy + "\n";
  out += fmt::format("Total params: {}\n", group_digits(s.total_params));
  out += fmt::format("Trainable params: {}\n", group_digits(s.trainable_params));
  out +=
      fmt::format("Non-trainable params: {}\n", group_digits(s.total_params - s.trainable_params));
  if (s.total_flops >= 0)
    out += fmt::format("FLOPs per sample: {} ({:.3f} GFLOP)\n", flops_text(s.total_flops, true),
                       s.total_flops / 1e9);
  else
    out += "FLOPs per sample: ? (give sizes for the null dims with --dim NAME=SIZE)\n";
  out += rule + "\n";
  return out;
}

namespace {
// A FLOP count as JSON: an integer while it fits int64, else a double; null when unknown.
nlohmann::ordered_json flops_json(double flops) {
  if (flops < 0) return nullptr;
  if (flops < 9.2e18) return std::llround(flops);
  return flops;
}
}  // namespace

std::string format_summary_json(const Summary& s) {
  nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
  for (const auto& r : s.rows) {
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (Dim d : r.shape)
      shape.push_back(d == kDynamic ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(d));
    nodes.push_back({{"name", r.node},
                     {"op", r.op},
                     {"output_shape", shape},
                     {"params", r.params},
                     {"flops", flops_json(r.flops)},
                     {"inputs", r.inputs},
                     {"branch", r.branch}});
    if (!r.weights_of.empty()) nodes.back()["weights_of"] = r.weights_of;
  }
  nlohmann::ordered_json out;
  out["name"] = s.name;
  out["nodes"] = nodes;
  out["total_params"] = s.total_params;
  out["trainable_params"] = s.trainable_params;
  out["flops_per_sample"] = flops_json(s.total_flops);
  // Names come from the graph file and may hold any bytes: invalid UTF-8 is replaced, not thrown.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string format_dot(const CompiledGraph& g, const SummaryOptions& o) {
  bool concrete = false;
  std::vector<TensorType> types = summary_types(g, o, concrete);
  if (o.batch <= 0)
    for (auto& t : types) t.shape[0] = kDynamic;
  static const char* colors[] = {"#e8f0fe", "#e6f4ea", "#fef7e0", "#fce8e6", "#f3e8fd", "#e0f7fa"};
  std::string out = fmt::format(
      "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
      "fontname=\"Helvetica\", fillcolor=white];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
      quoted_escape(g.def().name));
  const auto& inputs = g.def().inputs;
  for (size_t b = 0; b < inputs.size(); ++b) {
    out += fmt::format(
        "  subgraph \"cluster_{}\" {{\n    label=\"{} branch\";\n    style=filled;\n    "
        "color=\"{}\";\n",
        quoted_escape(inputs[b].name), quoted_escape(inputs[b].name), colors[b % 6]);
    out +=
        fmt::format("    \"{}\" [shape=ellipse, label=\"{}\\n{} {}\"];\n",
                    quoted_escape(inputs[b].name), quoted_escape(inputs[b].name),
                    format_shape(types[g.input_tensors()[b]].shape), dtype_name(inputs[b].dtype));
    for (const auto& n : g.nodes())
      if (n.branch == inputs[b].name)
        out += fmt::format("    \"{}\" [label=\"{}\\n{}\"];\n", quoted_escape(n.def->name),
                           quoted_escape(n.def->name), quoted_escape(n.def->op));
    out += "  }\n";
  }
  for (const auto& n : g.nodes())
    if (n.branch.empty())
      out += fmt::format("  \"{}\" [label=\"{}\\n{}\", fillcolor=\"#fff3c4\"];\n",
                         quoted_escape(n.def->name), quoted_escape(n.def->name),
                         quoted_escape(n.def->op));
  const auto& tensors = g.tensors();
  for (const auto& n : g.nodes())
    for (int t : n.inputs)
      out += fmt::format("  \"{}\" -> \"{}\" [label=\"{}\"];\n", quoted_escape(tensors[t].name),
                         quoted_escape(n.def->name), format_shape(types[t].shape));
  for (size_t k = 0; k < g.output_tensors().size(); ++k) {
    int t = g.output_tensors()[k];
    out += fmt::format(
        "  \"output:{}\" [shape=ellipse, label=\"output\\n{}\"];\n  \"{}\" -> \"output:{}\" "
        "[label=\"{}\"];\n",
        quoted_escape(g.def().outputs[k]), quoted_escape(g.def().outputs[k]),
        quoted_escape(tensors[t].name), quoted_escape(g.def().outputs[k]),
        format_shape(types[t].shape));
  }
  return out + "}\n";
}

}  // namespace fg
