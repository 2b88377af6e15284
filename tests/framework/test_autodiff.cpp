// The differentiation pass (framework/autodiff.hpp) on hand-made graphs of two test ops, with
// no oneDNN in the pass: `unit` (one input, an optional weight, a gradient unless `no_gradient:
// true`) and `join` (any number of inputs, no weights, a gradient).
#include <doctest/doctest.h>

#include <algorithm>

#include "framework/autodiff.hpp"
#include "framework/compiler.hpp"
#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/kernel.hpp"  // only for the test ops' compile(), never called

using namespace fg;

namespace {

class UnitOp final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    weighted_ = attrs.get_bool("weighted", true);
    gradient_ = !attrs.get_bool("no_gradient", false);
  }
  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    TensorType t = ctx.input(0);
    t.dtype = DType::f32;
    return {t};
  }
  std::vector<WeightSpec> weights(const InferContext&) const override {
    if (!weighted_) return {};
    return {WeightSpec{"kernel", {1}}};
  }
  bool has_gradient() const override { return gradient_; }
  KernelBuild compile(const KernelContext&) const override { throw Error("not for running"); }

 private:
  bool weighted_ = true, gradient_ = true;
};

class JoinOp final : public Op {
 public:
  void parse(AttrReader&) override {}
  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs_at_least(1);
    return {ctx.input(0)};
  }
  bool has_gradient() const override { return true; }
  KernelBuild compile(const KernelContext&) const override { throw Error("not for running"); }
};

OpRegistry test_ops() {
  OpRegistry ops;
  ops.add({"unit", [] { return std::make_unique<UnitOp>(); }, "test"});
  ops.add({"join", [] { return std::make_unique<JoinOp>(); }, "test"});
  return ops;
}

struct Planned {
  CompiledGraph graph;
  GradientPlan plan;

  int node(const std::string& name) const {
    for (size_t i = 0; i < graph.nodes().size(); ++i)
      if (graph.nodes()[i].def->name == name) return static_cast<int>(i);
    FAIL("no node " << name);
    return -1;
  }
  bool backward(const std::string& name) const { return plan.runs_backward[node(name)]; }
  bool input_gradient(const std::string& name, size_t i) const {
    return plan.needs_input_gradient[node(name)].at(i);
  }
  size_t sources(const std::string& tensor) const {
    return plan.gradient_sources[graph.find_tensor(tensor)].size();
  }
  std::vector<std::string> order() const {
    std::vector<std::string> names;
    for (int n : plan.backward_order) names.push_back(graph.nodes()[n].def->name);
    return names;
  }
};

// Losses on `losses` (tensor names); every node with a weight trains unless frozen in the YAML.
Planned plan_for(const std::string& nodes, const std::vector<std::string>& losses,
                 const std::string& outputs) {
  const std::string yaml =
      "name: t\ninputs:\n  x: {shape: [3]}\n  ids: {shape: [3], dtype: int32}\n"
      "nodes:\n" +
      nodes + "outputs: " + outputs + "\n";
  static const OpRegistry ops = test_ops();
  Planned p{compile_graph(load_graph_string(yaml, "t.yaml"), ops), {}};
  GradientRequest request;
  for (const auto& l : losses) request.loss_tensors.push_back(p.graph.find_tensor(l));
  for (size_t n = 0; n < p.graph.nodes().size(); ++n) {
    const CompiledNode& node = p.graph.nodes()[n];
    const bool weighted = !p.graph
                               .node_weights(n,
                                             [&] {
                                               std::vector<TensorType> types;
                                               for (const auto& t : p.graph.tensors())
                                                 types.push_back(t.type);
                                               return types;
                                             }())
                               .empty();
    request.node_trains_weights.push_back(weighted && node.def->trainable);
  }
  p.plan = plan_gradients(p.graph, request);
  return p;
}

}  // namespace

TEST_CASE("autodiff: a chain runs backward in reverse order; graph inputs get no gradient") {
  auto p = plan_for("  - {name: a, op: unit, input: x}\n  - {name: b, op: unit, input: a}\n", {"b"},
                    "[b]");
  CHECK(p.order() == std::vector<std::string>{"b", "a"});
  CHECK_FALSE(p.input_gradient("a", 0));
  CHECK(p.input_gradient("b", 0));
  CHECK(p.sources("a") == 1);
  CHECK(p.sources("b") == 1);  // the loss
  CHECK(p.sources("x") == 0);
}

TEST_CASE("autodiff: a tensor that fans out sums the gradients of every consumer") {
  auto p = plan_for(
      "  - {name: a, op: unit, input: x}\n  - {name: b, op: unit, input: a}\n"
      "  - {name: c, op: unit, input: a, weighted: false}\n"
      "  - {name: j, op: join, inputs: [b, c, a]}\n",
      {"j"}, "[j]");
  CHECK(p.sources("a") == 3);  // b, c and j itself
  CHECK(p.order() == std::vector<std::string>{"j", "c", "b", "a"});
  auto srcs = p.plan.gradient_sources[p.graph.find_tensor("a")];
  CHECK(srcs[0].node == p.node("j"));
  CHECK(srcs[0].input == 2);
}

TEST_CASE("autodiff: frozen nodes before every trainable one run no backward") {
  auto p = plan_for(
      "  - {name: a, op: unit, input: x, trainable: false}\n"
      "  - {name: b, op: unit, input: a}\n",
      {"b"}, "[b]");
  CHECK_FALSE(p.backward("a"));
  CHECK(p.backward("b"));
  CHECK_FALSE(p.input_gradient("b", 0));
  CHECK(p.order() == std::vector<std::string>{"b"});
}

TEST_CASE("autodiff: gradients flow through a frozen node to trainable ones before it") {
  auto p = plan_for(
      "  - {name: a, op: unit, input: x}\n"
      "  - {name: b, op: unit, input: a, trainable: false}\n"
      "  - {name: c, op: unit, input: b}\n",
      {"c"}, "[c]");
  CHECK(p.backward("b"));
  CHECK(p.input_gradient("b", 0));
  CHECK(p.order() == std::vector<std::string>{"c", "b", "a"});
}

TEST_CASE("autodiff: branches that reach no loss, or no weight, get no backward") {
  auto p = plan_for(
      "  - {name: a, op: unit, input: x}\n  - {name: side, op: unit, input: a}\n"
      "  - {name: head, op: unit, input: a}\n"
      "  - {name: plain, op: unit, input: x, weighted: false}\n"
      "  - {name: j, op: join, inputs: [head, plain]}\n",
      {"j"}, "[j, side]");
  CHECK_FALSE(p.backward("side"));
  CHECK_FALSE(p.backward("plain"));  // nothing trainable before it
  CHECK(p.backward("head"));
  CHECK(p.input_gradient("j", 0));
  CHECK_FALSE(p.input_gradient("j", 1));
  CHECK(p.sources("a") == 1);  // only head's backward
}

TEST_CASE("autodiff: int32 inputs never need a gradient") {
  auto p = plan_for("  - {name: e, op: unit, input: ids}\n  - {name: d, op: unit, input: e}\n",
                    {"d"}, "[d]");
  CHECK(p.backward("e"));
  CHECK_FALSE(p.input_gradient("e", 0));
}

TEST_CASE(
    "autodiff: an op without a gradient is an error at its line unless nothing trainable "
    "lies before it") {
  const std::string nodes =
      "  - {name: a, op: unit, input: x}\n"
      "  - {name: m, op: unit, input: a, weighted: false, no_gradient: true}\n"
      "  - {name: b, op: unit, input: m}\n";
  try {
    plan_for(nodes, {"b"}, "[b]");
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("op 'unit' has no gradient") != std::string::npos);
    CHECK(e.node_name() == "m");
    CHECK(e.loc().line == 7);
    CHECK(what.find("(a)") != std::string::npos);
    CHECK(what.find("trainable: false") != std::string::npos);
  }
  // Freeze a: nothing trainable before m, so m runs forward only.
  auto p = plan_for(
      "  - {name: a, op: unit, input: x, trainable: false}\n"
      "  - {name: m, op: unit, input: a, weighted: false, no_gradient: true}\n"
      "  - {name: b, op: unit, input: m}\n",
      {"b"}, "[b]");
  CHECK_FALSE(p.backward("m"));
  CHECK(p.order() == std::vector<std::string>{"b"});
}
