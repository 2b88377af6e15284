// The graph compiler: GraphDef -> CompiledGraph. Validates the graph (references, duplicates,
// cycles, unknown ops and keys), schedules it deterministically, and infers every tensor's type
// with symbolic (dynamic) batch and null dims. `bind` re-infers with concrete shapes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/graph_def.hpp"
#include "framework/op.hpp"
#include "framework/registry.hpp"

namespace fg {

struct CompiledNode {
  const NodeDef* def = nullptr;
  std::unique_ptr<Op> op;
  std::vector<int> inputs;   // tensor ids
  std::vector<int> outputs;  // tensor ids (one per output)
  std::string branch;        // the graph input this node descends from ("" if several / none)
};

struct TensorInfo {
  std::string name;  // the producing node (or graph input) name
  TensorType type;
  int producer = -1;     // node index, -1 for a graph input
  int input_index = -1;  // graph-input index when producer == -1
};

// Per-node figures for `summary` (per sample).
struct NodeStats {
  int64_t params = 0;
  double flops = 0;
};

class CompiledGraph {
 public:
  const GraphDef& def() const { return *def_; }
  const std::vector<CompiledNode>& nodes() const { return nodes_; }  // in schedule order
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::vector<int>& input_tensors() const { return input_tensors_; }
  const std::vector<int>& output_tensors() const { return output_tensors_; }
  const std::vector<Diagnostic>& warnings() const { return warnings_; }
  int find_tensor(const std::string& name) const;  // -1 if none

  // Re-infers every type with concrete input shapes (full shapes, batch first). Throws
  // fg::Error naming the node when the shapes do not fit. Returns types indexed by tensor id.
  std::vector<TensorType> bind(const std::vector<Dims>& input_shapes) const;
  // Input types with the given overrides for dynamic dims (name -> per-sample dims).
  // `dims` maps an input name to values for its null dims in order; batch fills dim 0.
  std::vector<Dims> concrete_input_shapes(
      int64_t batch, const std::map<std::string, std::vector<int64_t>>& dims) const;

  // Weight specs of a node, for the given (concrete or symbolic) tensor types.
  std::vector<WeightSpec> node_weights(size_t node, const std::vector<TensorType>& types) const;
  NodeStats node_stats(size_t node, const std::vector<TensorType>& types) const;
  // "<node>.<param>" -> spec, for every weight of the graph: a node with `weights_of` adds
  // none (its weights are the named node's, held once).
  std::vector<std::pair<std::string, WeightSpec>> all_weights() const;
  // The schedule index of the node whose weights node `node` uses (itself without
  // `weights_of`).
  size_t weights_owner(size_t node) const;

  InferContext context_for(size_t node, const std::vector<TensorType>& types) const;

 private:
  friend CompiledGraph compile_graph(std::shared_ptr<const GraphDef>, const OpRegistry&);
  // `weights_of`: names a node of the same op that owns its weights, whose weights have the
  // same names and shapes under `types`; else an fg::Error naming both nodes.
  void check_shared_weights(const std::vector<TensorType>& types) const;
  std::shared_ptr<const GraphDef> def_;
  std::vector<CompiledNode> nodes_;
  std::vector<TensorInfo> tensors_;
  std::vector<int> input_tensors_, output_tensors_;
  std::vector<Diagnostic> warnings_;
};

// Throws fg::Error on the first problem.
CompiledGraph compile_graph(std::shared_ptr<const GraphDef> def, const OpRegistry& registry);

}  // namespace fg
