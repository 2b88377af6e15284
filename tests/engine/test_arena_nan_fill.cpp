// RunOptions::fill_arena_with_nan makes a read before a write visible: a test op whose kernel
// returns its temporary without ever writing it gives NaN with the option, zeros without.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

// Copies its (never written) temporary to its output: a deliberate read before a write.
class TempReaderKernel final : public fg::Kernel {
 public:
  void execute(fg::ExecContext& ctx) const override {
    std::memcpy(ctx.dsts[0].get_data_handle(), ctx.temps[0].get_data_handle(),
                ctx.dsts[0].get_desc().get_size());
  }
};

class TempReader final : public fg::Op {
 public:
  void parse(fg::AttrReader&) override {}
  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    return {ctx.input(0)};
  }
  fg::KernelBuild compile(const fg::KernelContext& ctx) const override {
    fg::KernelBuild build = ctx.start_build();
    build.add_temp(fg::onednn::plain_desc(ctx.outputs[0]));
    build.kernel = std::make_unique<TempReaderKernel>();
    return build;
  }
};

}  // namespace

TEST_CASE("fill_arena_with_nan shows a kernel that reads a buffer before writing it") {
  fg::OpRegistry ops = fg::builtin_ops();
  ops.add({"temp_reader", [] { return std::make_unique<TempReader>(); }, "test only"});
  auto graph = std::make_shared<fg::CompiledGraph>(fg::compile_graph(
      fg::load_graph_string("name: t\ninputs:\n  x: {shape: [13]}\nnodes:\n"
                            "  - {name: r, op: temp_reader, input: x}\noutputs: [r]\n",
                            "t.yaml"),
      ops));
  fg::Model model(graph, fg::WeightStore{});
  const std::map<std::string, fg::Tensor> in{{"x", fg::test::random_tensor({3, 13}, 1)}};
  const fg::Tensor zeros = model.run(in).at("r");  // a new arena starts zeroed
  for (size_t i = 0; i < zeros.size(); ++i) CHECK(zeros.data<float>()[i] == 0.f);
  fg::RunOptions fill;
  fill.fill_arena_with_nan = true;
  const fg::Tensor filled = model.run(in, fill).at("r");
  for (size_t i = 0; i < filled.size(); ++i) CHECK(std::isnan(filled.data<float>()[i]));
}
