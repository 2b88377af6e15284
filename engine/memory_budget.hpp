// The memory a plan will need, estimated before it is built, and the refusal when that exceeds
// the budget (ModelOptions::max_memory; by default the machine's physical memory). The estimate
// is an upper bound of the plan's arena from the bound types: the weights plus every activation
// tensor as if none shared arena bytes. See docs/limits.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/weights.hpp"
#include "framework/compiler.hpp"

namespace fg {

// One thing that takes memory: a node's output, a graph input or a weight.
struct MemoryConsumer {
  std::string kind;  // "input", "node output" or "weight"
  std::string name;  // tensor name, or "<node>.<param>"
  std::string node;  // the producing / owning node ("" for a graph input)
  std::string op;
  int64_t bytes = 0;
};

struct MemoryEstimate {
  int64_t weight_bytes = 0;
  int64_t activation_bytes = 0;
  MemoryConsumer largest;
  int64_t total() const { return weight_bytes + activation_bytes; }
};

// "(1, 100), (1, 224, 224, 3)": a plan's input shapes in messages.
std::string format_input_shapes(const std::vector<Dims>& shapes);
// The hint of the errors that report an allocation that failed while building or running a
// plan (std::bad_alloc turned into an fg::Error naming what was being done).
extern const char* const kOutOfMemoryHint;

// Bytes of physical memory (sysconf), or 0 if unknown.
uint64_t physical_memory_bytes();

// The estimate for these concrete types (as CompiledGraph::bind returns them), with the
// weights the plan would use. Sums saturate rather than wrap.
MemoryEstimate estimate_plan_memory(const CompiledGraph& graph,
                                    const std::vector<TensorType>& types,
                                    const WeightStore& weights);

// Throws fg::Error naming the largest consumer and the bytes when the plan for `input_shapes`
// would need more than `max_memory` bytes (0: physical_memory_bytes()).
void check_memory_budget(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
                         const WeightStore& weights, uint64_t max_memory);

}  // namespace fg
