// What a run reports when it cannot go on (issue 14): an allocation that fails while a plan is
// built or run names the node or step (never "std::bad_alloc" alone), and check_numerics stops
// at the first graph input or node output holding NaN or Inf, naming it.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fusiongraph/fusiongraph.hpp>
#include <limits>
#include <new>
#include <string>

#include "framework/yaml_loader.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "tests/test_util.hpp"

namespace {

// y = x, failing as `fail` says: "compile" (std::bad_alloc from compile), "execute"
// (std::bad_alloc from the kernel), "arena" (asks for a 2^50-byte temporary, more than any
// address space, so the arena allocation fails), or "none".
class FailingCopy final : public fg::Op {
 public:
  void parse(fg::AttrReader& attrs) override {
    fail_ = attrs.get_choice("fail", {"none", "compile", "execute", "arena"}, "none");
  }
  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    ctx.expect_inputs(1);
    return {ctx.input(0)};
  }
  fg::KernelBuild compile(const fg::KernelContext& ctx) const override {
    if (fail_ == "compile") throw std::bad_alloc();
    fg::KernelBuild build = ctx.start_build();
    fg::PrimitiveSequence calls;
    calls.add(fg::onednn::make_reorder_pd(build.src_descs[0], build.dst_descs[0]),
              {{DNNL_ARG_FROM, fg::CallArg::src(0)}, {DNNL_ARG_TO, fg::CallArg::dst(0)}}, build);
    if (fail_ == "execute")
      build.kernel = std::make_unique<Throwing>();
    else
      build.kernel = std::make_unique<fg::PrimitiveSequenceKernel>(std::move(calls));
    if (fail_ == "arena")
      build.temp_descs.push_back(dnnl::memory::desc(
          {dnnl::memory::dim{1} << 50}, dnnl::memory::data_type::u8, dnnl::memory::format_tag::a));
    return build;
  }

 private:
  struct Throwing final : fg::Kernel {
    void execute(fg::ExecContext&) const override { throw std::bad_alloc(); }
  };
  std::string fail_;
};

fg::Session failing_session(const std::string& fail) {
  fg::OpRegistry ops = fg::builtin_ops();
  ops.add({"failing_copy", [] { return std::make_unique<FailingCopy>(); }, "y = x"});
  fg::CompileOptions options;
  options.ops = &ops;
  options.threads = 1;
  return fg::load_string(fmt::format(R"(name: t
inputs:
  x: {{shape: [13]}}
nodes:
  - {{name: before, op: activation, input: x, activation: relu}}
  - {{name: hog, op: failing_copy, input: before, fail: {}}}
  - {{name: after, op: activation, input: hog, activation: tanh}}
outputs: [after]
)",
                                     fail),
                         options, "t.yaml");
}

std::string run_error(const fg::Session& session, const fg::Tensor& x,
                      const fg::RunOptions& options = {}) {
  try {
    session.run({{"x", x}}, options);
  } catch (const fg::Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("std::bad_alloc while a plan is built or run becomes an fg::Error naming the node") {
  const fg::Tensor x = fg::test::random_tensor({7, 13}, 3);
  CHECK(run_error(failing_session("none"), x).empty());
  SUBCASE("in Op::compile") {
    const std::string what = run_error(failing_session("compile"), x);
    CAPTURE(what);
    CHECK(has(what, "t.yaml:6:"));
    CHECK(has(what,
              "node 'hog' (failing_copy): out of memory while compiling the node for input "
              "shapes (7, 13) (its outputs take 364 bytes)"));
    CHECK_FALSE(has(what, "bad_alloc"));
  }
  SUBCASE("allocating the activation arena") {
    // AddressSanitizer aborts on a 2^50-byte request instead of failing it: the plain build
    // checks this case.
#if !defined(__SANITIZE_ADDRESS__)
    const std::string what = run_error(failing_session("arena"), x);
    CAPTURE(what);
    CHECK(has(what, "could not allocate the activation arena of"));
    CHECK(has(what, "input shapes (7, 13)"));
    CHECK(has(what, fmt::format("its largest buffer ({} bytes) is used first by step 'hog'",
                                size_t{1} << 50)));
    CHECK(has(what, "node 'hog' (failing_copy)"));
#endif
  }
  SUBCASE("in a kernel") {
    const fg::Session session = failing_session("execute");
    const std::string what = run_error(session, x);
    CAPTURE(what);
    CHECK(has(what, "out of memory while running step 1 ('hog')"));
    CHECK(has(what, "node 'hog' (failing_copy)"));
    // The state went back to the pool: the next run fails the same way, nothing is corrupted.
    CHECK(run_error(session, x) == what);
  }
}

namespace {

// A NaN input, then relu and max pooling, which can hide it; the dense layer's kernel may hold
// a NaN of its own (`bad_weight`).
fg::Session pooling_session(bool optimize, bool bad_weight) {
  const char* yaml = R"(name: hide
inputs:
  x: {shape: [12, 3]}
nodes:
  - {name: d, op: dense, input: x, units: 5}
  - {name: r, op: activation, input: d, activation: relu}
  - {name: m, op: max_pooling1d, input: r, pool_size: 4}
  - {name: f, op: flatten, input: m}
  - {name: p, op: dense, input: f, units: 3, activation: softmax}
outputs: [p]
)";
  auto def = fg::load_graph_string(yaml, "hide.yaml");
  fg::CompileOptions options;
  options.threads = 1;
  options.optimize = optimize;
  const fg::CompiledGraph graph = fg::compile_graph(def, fg::builtin_ops());
  fg::WeightStore weights = fg::WeightStore::initialize(graph, 11);
  if (bad_weight) {
    fg::Tensor kernel = *weights.find("d.kernel");
    fg::Tensor copy(kernel.dtype(), kernel.shape());
    std::copy(kernel.data<float>(), kernel.data<float>() + kernel.size(),
              copy.mutable_data<float>());
    copy.mutable_data<float>()[2 * 5 + 4] = std::numeric_limits<float>::infinity();  // [2, 4]
    weights.set("d.kernel", copy);
  }
  options.weights = weights;
  return fg::Session(def, options);
}

}  // namespace

TEST_CASE("check_numerics reports a NaN input as the graph input, before relu and pooling") {
  fg::Tensor x = fg::test::random_tensor({2, 12, 3}, 5);
  x.mutable_data<float>()[1 * 36 + 7 * 3 + 1] = std::numeric_limits<float>::quiet_NaN();
  fg::RunOptions check;
  check.check_numerics = true;
  for (bool optimize : {true, false}) {
    CAPTURE(optimize);
    const fg::Session session = pooling_session(optimize, false);
    CHECK_NOTHROW(session.run({{"x", x}}));  // unchecked, the NaN goes unnoticed or not
    try {
      session.run({{"x", x}}, check);
      FAIL("no error");
    } catch (const fg::Error& e) {
      const std::string what = e.what();
      CAPTURE(what);
      CHECK(e.tensor_name() == "x");
      CHECK(has(what,
                "graph input 'x' has 1 non-finite value (NaN or Inf) of 72, the first at "
                "index 58 = [1, 7, 1] (nan)"));
    }
    // Finite inputs pass the check with the same outputs as an unchecked run.
    const fg::Tensor fine = fg::test::random_tensor({2, 12, 3}, 6);
    const auto want = session.run({{"x", fine}});
    fg::test::check_close(session.run({{"x", fine}}, check).at("p"),
                          fg::test::to_doubles(want.at("p")), 0, 0);
  }
}

TEST_CASE("check_numerics stops at the first node whose output is not finite") {
  const fg::Tensor x = fg::test::random_tensor({2, 12, 3}, 5);
  fg::RunOptions check;
  check.check_numerics = true;
  // An Inf weight in d's kernel (row 2, unit 4): every d output of unit 4 is +-Inf or NaN.
  const fg::Session unfused = pooling_session(false, true);
  try {
    unfused.run({{"x", x}}, check);
    FAIL("no error");
  } catch (const fg::Error& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(e.node_name() == "d");
    CHECK(has(what, "hide.yaml:5:"));
    CHECK(has(what, "node 'd' (dense)"));
    CHECK(has(what,
              "the node's output 'd' has 24 non-finite values (NaN or Inf) of 120, the "
              "first at index 4 = [0, 0, 4] (-inf)"));
  }
  // Fused, relu is part of d's step: the report names the last node of the fusion.
  const fg::Session fused = pooling_session(true, true);
  try {
    fused.run({{"x", x}}, check);
    FAIL("no error");
  } catch (const fg::Error& e) {
    CAPTURE(e.what());
    CHECK((e.node_name() == "d" || e.node_name() == "r"));
    CHECK(has(e.what(), "non-finite values (NaN or Inf) of 120"));
  }
}
