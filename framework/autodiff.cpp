#include "framework/autodiff.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "framework/op.hpp"

namespace fg {
namespace {

std::vector<bool> tensors_depending_on_weights(const CompiledGraph& graph,
                                               const GradientRequest& request) {
  std::vector<bool> depends(graph.tensors().size(), false);
  for (size_t n = 0; n < graph.nodes().size(); ++n) {  // schedule order: producers first
    const CompiledNode& node = graph.nodes()[n];
    bool d = request.node_trains_weights.at(n);
    for (int t : node.inputs) d = d || depends[t];
    for (int t : node.outputs) depends[t] = d;
  }
  return depends;
}

std::vector<bool> tensors_reaching_a_loss(const CompiledGraph& graph,
                                          const GradientRequest& request) {
  std::vector<bool> reaches(graph.tensors().size(), false);
  for (int t : request.loss_tensors) reaches.at(t) = true;
  for (size_t n = graph.nodes().size(); n-- > 0;) {  // consumers first
    const CompiledNode& node = graph.nodes()[n];
    bool r = false;
    for (int t : node.outputs) r = r || reaches[t];
    if (r)
      for (int t : node.inputs) reaches[t] = true;
  }
  return reaches;
}

// The trainable nodes whose weights a tensor depends on (for the "no gradient" message).
std::vector<std::string> trainable_nodes_before(const CompiledGraph& graph,
                                                const GradientRequest& request, size_t node) {
  std::vector<bool> seen(graph.tensors().size(), false);
  for (int t : graph.nodes()[node].inputs) seen[t] = true;
  std::vector<std::string> names;
  for (size_t n = node; n-- > 0;) {
    const CompiledNode& c = graph.nodes()[n];
    bool feeds = false;
    for (int t : c.outputs) feeds = feeds || seen[t];
    if (!feeds) continue;
    for (int t : c.inputs) seen[t] = true;
    if (request.node_trains_weights[n]) names.insert(names.begin(), c.def->name);
  }
  return names;
}

Error no_gradient_error(const CompiledGraph& graph, const GradientRequest& request, size_t n) {
  const CompiledNode& node = graph.nodes()[n];
  std::vector<std::string> before = trainable_nodes_before(graph, request, n);
  Error e(fmt::format("op '{}' has no gradient, and training needs one here", node.def->op));
  e.at(node.def->loc).node(node.def->name, node.def->op);
  if (request.node_trains_weights[n])
    e.hint(
        "the node has trainable weights of its own; freeze it with `trainable: false`, or "
        "give the op a gradient (docs/extending.md)");
  else
    e.hint(
        fmt::format("trainable weights lie before it ({}); freeze them with `trainable: "
                    "false`, or give the op a gradient (docs/extending.md)",
                    fmt::join(before, ", ")));
  return e;
}

}  // namespace

GradientPlan plan_gradients(const CompiledGraph& graph, const GradientRequest& request) {
  if (request.node_trains_weights.size() != graph.nodes().size())
    throw Error("internal: plan_gradients needs one trains-weights flag per node");
  GradientPlan plan;
  plan.depends_on_weights = tensors_depending_on_weights(graph, request);
  plan.reaches_loss = tensors_reaching_a_loss(graph, request);
  const size_t nodes = graph.nodes().size();
  plan.runs_backward.assign(nodes, false);
  plan.needs_input_gradient.resize(nodes);
  plan.gradient_sources.resize(graph.tensors().size());
  for (size_t i = 0; i < request.loss_tensors.size(); ++i)
    plan.gradient_sources[request.loss_tensors[i]].push_back({-1, static_cast<int>(i)});

  for (size_t n = nodes; n-- > 0;) {
    const CompiledNode& node = graph.nodes()[n];
    bool reaches = false, depends = request.node_trains_weights[n];
    for (int t : node.outputs) reaches = reaches || plan.reaches_loss[t];
    for (int t : node.inputs) depends = depends || plan.depends_on_weights[t];
    plan.needs_input_gradient[n].assign(node.inputs.size(), false);
    if (!reaches || !depends) continue;
    if (!node.op->has_gradient()) throw no_gradient_error(graph, request, n);
    plan.runs_backward[n] = true;
    plan.backward_order.push_back(static_cast<int>(n));
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int t = node.inputs[i];
      const bool needed = plan.depends_on_weights[t] && graph.tensors()[t].type.dtype == DType::f32;
      plan.needs_input_gradient[n][i] = needed;
      if (needed) plan.gradient_sources[t].push_back({static_cast<int>(n), static_cast<int>(i)});
    }
  }
  return plan;
}

}  // namespace fg
