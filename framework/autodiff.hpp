// Reverse-mode differentiation as a pass over the compiled graph, with no oneDNN in it: which
// nodes run a backward, which of their inputs need a gradient, in what order the backward
// steps run, and where a gradient that fans out is summed. The training plan
// (engine/training/training_plan.hpp) turns the answer into steps.
//
// A tensor *depends on a trainable weight* when its producer trains weights (it has trainable
// weights and `trainable` is not false) or one of its producer's inputs depends on one. A
// tensor *reaches a loss* when a loss reads it or a node reading it has an output that does.
// A node runs a backward when one of its outputs reaches a loss and it trains weights or one
// of its inputs depends on a trainable weight; then input i needs a gradient when it is a
// float32 tensor that depends on a trainable weight. Branches that reach no trainable weight
// get no backward at all (a frozen encoder in front of a trainable head costs nothing).
#pragma once

#include <utility>
#include <vector>

namespace fg {

class CompiledGraph;

struct GradientRequest {
  std::vector<int> loss_tensors;          // tensor ids the losses read
  std::vector<bool> node_trains_weights;  // per node: trainable weights, node not frozen
};

struct GradientSource {
  int node = -1;  // the node whose backward writes the contribution; -1 = a loss
  int input = 0;  // that node's input slot (for a loss: its index in loss_tensors)
};

struct GradientPlan {
  std::vector<bool> depends_on_weights;                 // per tensor
  std::vector<bool> reaches_loss;                       // per tensor
  std::vector<bool> runs_backward;                      // per node
  std::vector<std::vector<bool>> needs_input_gradient;  // per node, per input
  std::vector<int> backward_order;  // nodes that run a backward, in reverse schedule order
  // Per tensor, every contribution to d loss / d tensor, in the order the backward produces
  // them; more than one (a tensor that fans out) means a sum before the producer's backward.
  std::vector<std::vector<GradientSource>> gradient_sources;
};

// Throws fg::Error at the first node (in backward order) that must run a backward but whose op
// has none: "op 'x' has no gradient", with what lies before it that is trainable.
GradientPlan plan_gradients(const CompiledGraph& graph, const GradientRequest& request);

}  // namespace fg
