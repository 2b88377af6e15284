// The plan checks what Op::compile hands back (KernelBuild) against the inferred types before
// using it: one desc per input and output, each with the tensor's dims (or, for rank >= 3, its
// channels-first view), data type and bytes. A test op returns a wrong desc on purpose.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

// y = x (a copy), with the layouts it reports spoiled as `spoil` says.
class Copy final : public fg::Op {
 public:
  void parse(fg::AttrReader& attrs) override {
    spoil_ = attrs.get_choice("spoil", {"none", "channels_first", "dims", "dtype", "count", "src"},
                              "none");
  }
  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    ctx.expect_inputs(1);
    return {ctx.input(0)};
  }
  fg::KernelBuild compile(const fg::KernelContext& ctx) const override {
    namespace on = fg::onednn;
    fg::KernelBuild build = ctx.start_build();
    // The copy itself is right; only what it reports about its layouts is spoiled.
    fg::PrimitiveSequence calls;
    calls.add(on::make_reorder_pd(build.src_descs[0], build.dst_descs[0]),
              {{DNNL_ARG_FROM, fg::CallArg::src(0)}, {DNNL_ARG_TO, fg::CallArg::dst(0)}}, build);
    build.kernel = std::make_unique<fg::PrimitiveSequenceKernel>(std::move(calls));
    const fg::Dims& shape = ctx.outputs[0].shape;  // [B, 7, 13]
    if (spoil_ == "channels_first") {              // allowed: the same tensor {N, C, W}
      build.dst_descs[0] = on::channels_first_view(shape);
    } else if (spoil_ == "dims") {  // the same bytes, other dims
      build.dst_descs[0] = on::plain_desc(fg::Dims{shape[0], 1, shape[1] * shape[2]});
    } else if (spoil_ == "dtype") {
      build.dst_descs[0] = on::plain_desc(shape, fg::DType::i32);
    } else if (spoil_ == "count") {
      build.dst_descs.push_back(build.dst_descs[0]);
    } else if (spoil_ == "src") {
      build.src_descs[0] = on::plain_desc(fg::Dims{shape[0], 7 * 13});
    }
    return build;
  }

 private:
  std::string spoil_;
};

fg::Tensor run_copy(const std::string& spoil, const fg::Tensor& x) {
  fg::OpRegistry ops = fg::builtin_ops();
  ops.add({"copy", [] { return std::make_unique<Copy>(); }, "y = x"});
  const std::string yaml = fmt::format(R"(name: t
inputs:
  x: {{shape: [7, 13]}}
nodes:
  - {{name: bad_copy, op: copy, input: x, spoil: {}}}
outputs: [bad_copy]
)",
                                       spoil);
  auto graph = std::make_shared<fg::CompiledGraph>(
      fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), ops));
  fg::Model model(graph, fg::WeightStore{});
  return model.run({{"x", x}}).at("bad_copy");
}

std::string error_of(const std::string& spoil) {
  try {
    run_copy(spoil, fg::test::random_tensor({3, 7, 13}, 1));
  } catch (const fg::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a kernel's descs that describe the tensor are accepted") {
  const fg::Tensor x = fg::test::random_tensor({3, 7, 13}, 1);
  for (const std::string spoil : {"none", "channels_first"}) {
    CAPTURE(spoil);
    fg::test::check_close(run_copy(spoil, x), fg::test::to_doubles(x), 0, 0);
  }
}

TEST_CASE("a kernel's desc that does not describe the tensor is an error naming node and op") {
  const std::string dims = error_of("dims");
  CAPTURE(dims);
  CHECK(dims.find("bad_copy") != std::string::npos);
  CHECK(dims.find("op 'copy'") != std::string::npos);
  // Both sides: the kernel's desc and the tensor.
  CHECK(dims.find("dims [3, 1, 91]") != std::string::npos);
  CHECK(dims.find("(3, 7, 13) float32") != std::string::npos);
  CHECK(dims.find("output 0") != std::string::npos);

  const std::string dtype = error_of("dtype");
  CAPTURE(dtype);
  CHECK(dtype.find("data type s32") != std::string::npos);
  CHECK(dtype.find("(3, 7, 13) float32") != std::string::npos);

  const std::string count = error_of("count");
  CAPTURE(count);
  CHECK(count.find("2 output descs for 1 output") != std::string::npos);

  const std::string src = error_of("src");
  CAPTURE(src);
  CHECK(src.find("input 0") != std::string::npos);
  CHECK(src.find("dims [3, 91]") != std::string::npos);
}
