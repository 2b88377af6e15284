#include "engine/memory_budget.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <limits>

namespace fg {

namespace {

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<int64_t>::max() : sum;
}

std::string describe(const MemoryConsumer& c) {
  if (c.kind == "weight") return fmt::format("weight '{}'", c.name);
  if (c.kind == "input") return fmt::format("input '{}'", c.name);
  return fmt::format("the output of node '{}' ({})", c.node, c.op);
}

}  // namespace

const char* const kOutOfMemoryHint =
    "use a smaller batch or smaller --dim sizes, or lower max_memory (--max-memory) so that "
    "such plans are refused before they are built; see docs/limits.md";

std::string format_input_shapes(const std::vector<Dims>& shapes) {
  std::string out;
  for (const auto& s : shapes) out += (out.empty() ? "" : ", ") + format_shape(s);
  return out;
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

MemoryEstimate estimate_plan_memory(const CompiledGraph& graph,
                                    const std::vector<TensorType>& types,
                                    const WeightStore& weights) {
  MemoryEstimate e;
  auto consider = [&](MemoryConsumer c) {
    if (c.bytes > e.largest.bytes) e.largest = std::move(c);
  };
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const CompiledNode& n = graph.nodes()[i];
    for (int t : n.outputs) {
      const int64_t bytes = tensor_bytes_within_limit(types[t].shape, types[t].dtype)
                                .value_or(std::numeric_limits<int64_t>::max());
      e.activation_bytes = saturating_add(e.activation_bytes, bytes);
      consider({"node output", graph.tensors()[t].name, n.def->name, n.def->op, bytes});
    }
  }
  for (int t : graph.input_tensors()) {
    const int64_t bytes = tensor_bytes_within_limit(types[t].shape, types[t].dtype).value_or(0);
    e.activation_bytes = saturating_add(e.activation_bytes, bytes);
    consider({"input", graph.tensors()[t].name, "", "", bytes});
  }
  for (const auto& [key, tensor] : weights.tensors()) {
    const int64_t bytes = static_cast<int64_t>(tensor.bytes());
    e.weight_bytes = saturating_add(e.weight_bytes, bytes);
    consider({"weight", key, key.substr(0, key.rfind('.')), "", bytes});
  }
  return e;
}

void check_memory_budget(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
                         const WeightStore& weights, uint64_t max_memory) {
  const uint64_t limit = max_memory != 0 ? max_memory : physical_memory_bytes();
  if (limit == 0) return;  // unknown machine size and no explicit budget
  const MemoryEstimate e = estimate_plan_memory(graph, graph.bind(input_shapes), weights);
  if (static_cast<uint64_t>(e.total()) <= limit) return;
  Error error(fmt::format(
      "the plan for input shapes {} would need up to {} bytes ({} of weights, {} of "
      "activations), more than the memory limit of {} bytes{}; the largest consumer is {} "
      "with {} bytes",
      format_input_shapes(input_shapes), e.total(), e.weight_bytes, e.activation_bytes, limit,
      max_memory != 0 ? " (max_memory)" : " (the machine's physical memory)", describe(e.largest),
      e.largest.bytes));
  if (e.largest.kind == "node output")
    error.node(e.largest.node, e.largest.op);
  else
    error.tensor(e.largest.name);
  error.hint(
      "use a smaller batch or smaller --dim sizes, or raise max_memory (--max-memory); see "
      "docs/limits.md");
  throw error;
}

}  // namespace fg
