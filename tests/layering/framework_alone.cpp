// Built from the framework's objects alone (CMakeLists.txt: no kernels, layers, engine or
// oneDNN), so it only links while framework/ depends on nothing above it. It registers one op
// of its own, compiles a small graph with it and reads a real graph file.
#include <cstdio>
#include <exception>
#include <memory>

#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"

// The kernel layer is not linked into this program, so nothing here defines KernelBuild (what
// Op::compile returns); an empty definition lets Identity::compile be defined. It is the only
// definition in this program, and compile never returns one.
namespace fg {
struct KernelBuild {};
}  // namespace fg

namespace {

// y = x: enough of an op for parsing, inference and scheduling.
class Identity final : public fg::Op {
 public:
  void parse(fg::AttrReader&) override {}
  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    ctx.expect_inputs(1);
    return {ctx.input(0)};
  }
  fg::KernelBuild compile(const fg::KernelContext&) const override {
    throw fg::Error("framework_alone: no kernels here");
  }
};

}  // namespace

int main(int argc, char** argv) {
  try {
    fg::OpRegistry ops;
    ops.add({"identity", [] { return std::make_unique<Identity>(); }, "y = x"});
    const auto graph = fg::compile_graph(fg::load_graph_string(R"(
inputs:
  x: {shape: [7, 13]}
nodes:
  - {name: a, op: identity, input: x}
  - {name: b, op: identity, input: a}
outputs: [b]
)",
                                                               "identity.yaml"),
                                         ops);
    if (graph.nodes().size() != 2 ||
        graph.tensors().at(graph.output_tensors()[0]).type.shape != fg::Dims{fg::kDynamic, 7, 13}) {
      std::fprintf(stderr, "framework_alone: unexpected compiled graph\n");
      return 1;
    }
    if (argc > 1) {
      const auto def = fg::load_graph_file(argv[1]);
      std::printf("%s: %zu nodes read by the framework alone\n", argv[1], def->nodes.size());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "framework_alone: %s\n", e.what());
    return 1;
  }
}
