// The public facade (fusiongraph.hpp) and the extension surface (extension.hpp): load from a
// string or a file, weight sources, names and types, run against a naive computation, custom
// ops through a registry, and the errors.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <fusiongraph/extension.hpp>
#include <fusiongraph/fusiongraph.hpp>

#include "tests/test_util.hpp"

namespace fs = std::filesystem;

namespace {

// x [batch, 7] -> dense(3, relu) -> out; a second input passes through an activation.
const char* kGraph = R"(name: api_test
inputs:
  x: {shape: [7]}
  z: {shape: [null, 2]}
nodes:
  - {name: d, op: dense, input: x, units: 3, activation: relu}
  - {name: t, op: activation, input: z, activation: tanh}
outputs: [d, t]
)";

fg::WeightStore dense_weights(uint64_t seed) {
  fg::WeightStore w;
  w.set("d.kernel", fg::test::random_tensor({7, 3}, seed));
  w.set("d.bias", fg::test::random_tensor({3}, seed + 1));
  return w;
}

std::vector<double> naive_dense_relu(const fg::Tensor& x, const fg::WeightStore& w) {
  const int64_t batch = x.shape()[0], in = 7, units = 3;
  const float* k = w.find("d.kernel")->data<float>();
  const float* b = w.find("d.bias")->data<float>();
  std::vector<double> y(batch * units);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t u = 0; u < units; ++u) {
      double acc = b[u];
      for (int64_t i = 0; i < in; ++i)
        acc += double(x.data<float>()[n * in + i]) * k[i * units + u];
      y[n * units + u] = std::max(acc, 0.0);
    }
  return y;
}

using fg::test::error_of;

fg::CompileOptions with_weights(fg::WeightStore w) {
  fg::CompileOptions o;
  o.weights = std::move(w);
  return o;
}

// A custom op written against extension.hpp only: y = scale * x (oneDNN eltwise_linear).
class Scale final : public fg::Op {
 public:
  void parse(fg::AttrReader& attrs) override {
    scale_ = attrs.get_float("scale", 1.0);
    if (scale_ == 0) throw attrs.error("scale", "scale must not be 0");
  }
  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_dtype(0, fg::DType::f32);
    return {ctx.input(0)};
  }
  fg::KernelBuild compile(const fg::KernelContext& ctx) const override {
    fg::KernelBuild build = ctx.start_build();
    fg::PrimitiveSequence calls;
    calls.add(fg::onednn::make_eltwise_pd(build.src_descs[0], dnnl::algorithm::eltwise_linear,
                                          float(scale_), 0.f),
              {{DNNL_ARG_SRC, fg::CallArg::src(0)}, {DNNL_ARG_DST, fg::CallArg::dst(0)}}, build);
    build.kernel = std::make_unique<fg::PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

 private:
  double scale_ = 1;
};

fg::OpInfo scale_op() {
  return {"scale", [] { return std::make_unique<Scale>(); }, "y = scale * x"};
}

}  // namespace

TEST_CASE("api load_string runs and matches a naive dense") {
  const fg::WeightStore w = dense_weights(3);
  fg::Session s = fg::load_string(kGraph, with_weights(w));
  for (int64_t batch : {1, 4}) {
    CAPTURE(batch);
    fg::Tensor x = fg::test::random_tensor({batch, 7}, 10 + batch);
    fg::Tensor z = fg::test::random_tensor({batch, 5, 2}, 20 + batch);
    auto out = s.run({{"x", x}, {"z", z}});
    REQUIRE(out.size() == 2);
    fg::test::check_shape(out.at("d"), {batch, 3});
    fg::test::check_close(out.at("d"), naive_dense_relu(x, w));
    std::vector<double> want;
    for (size_t i = 0; i < z.size(); ++i) want.push_back(std::tanh(double(z.data<float>()[i])));
    fg::test::check_close(out.at("t"), want);
  }
}

TEST_CASE("api read_graph_string gives the definition a Session compiles") {
  const std::shared_ptr<const fg::GraphDef> def = fg::read_graph_string(kGraph, "mine.yaml");
  CHECK(def->file == "mine.yaml");
  const fg::Session s(def, with_weights(dense_weights(3)));
  CHECK(s.input_names() == std::vector<std::string>{"x", "z"});
  CHECK(error_of([] { fg::read_graph_string("name: [", "bad.yaml"); }).find("bad.yaml:1:") !=
        std::string::npos);
  CHECK(error_of([] { fg::read_graph("/nonexistent/g.yaml"); }).find("/nonexistent/g.yaml") !=
        std::string::npos);
}

TEST_CASE("api names and types") {
  fg::Session s = fg::load_string(kGraph, with_weights(dense_weights(1)));
  CHECK(s.name() == "api_test");
  CHECK(s.input_names() == std::vector<std::string>{"x", "z"});
  CHECK(s.output_names() == std::vector<std::string>{"d", "t"});
  CHECK(s.input_type("x").shape == fg::Dims{fg::kDynamic, 7});
  CHECK(s.input_type("z").shape == fg::Dims{fg::kDynamic, fg::kDynamic, 2});
  CHECK(s.input_type("x").dtype == fg::DType::f32);
  CHECK(s.output_type("d").shape == fg::Dims{fg::kDynamic, 3});
  auto types = s.output_types({{"x", {5, 7}}, {"z", {5, 11, 2}}});
  CHECK(types.at("d").shape == fg::Dims{5, 3});
  CHECK(types.at("t").shape == fg::Dims{5, 11, 2});
  auto specs = s.weight_specs();
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].first == "d.kernel");
  CHECK(specs[0].second.shape == fg::Dims{7, 3});
  CHECK(std::string(fg::version()).find('.') != std::string::npos);
}

TEST_CASE("api optimize off gives the same results") {
  fg::CompileOptions o = with_weights(dense_weights(4));
  const char* yaml =
      "name: g\ninputs:\n  x: {shape: [7]}\nnodes:\n"
      "  - {name: d, op: dense, input: x, units: 3, activation: relu}\n"
      "  - {name: r, op: reshape, input: d, target_shape: [3, 1]}\noutputs: [r]\n";
  fg::Tensor x = fg::test::random_tensor({2, 7}, 12);
  auto a = fg::load_string(yaml, o).run({{"x", x}});
  o.optimize = false;
  auto b = fg::load_string(yaml, o).run({{"x", x}});
  fg::test::check_shape(a.at("r"), {2, 3, 1});
  fg::test::check_close(a.at("r"), naive_dense_relu(x, *o.weights));
  CHECK(fg::to_floats(a.at("r")) == fg::to_floats(b.at("r")));
}

TEST_CASE("api summary counts parameters") {
  fg::Session s = fg::load_string(kGraph, with_weights(dense_weights(1)));
  const std::string table = s.summary();
  CHECK(table.find("d (dense)") != std::string::npos);
  CHECK(table.find("Total params: 24") != std::string::npos);  // 7 * 3 + 3
  CHECK(s.summary_json().find("\"total_params\": 24") != std::string::npos);
}

TEST_CASE("api weight sources") {
  fg::Tensor x = fg::test::random_tensor({2, 7}, 5);
  fg::Tensor z = fg::test::random_tensor({2, 3, 2}, 6);
  SUBCASE("init_seed is deterministic and equals WeightStore::initialize") {
    fg::CompileOptions o;
    o.init_seed = 7;
    auto a = fg::load_string(kGraph, o).run({{"x", x}, {"z", z}});
    auto b = fg::load_string(kGraph, o).run({{"x", x}, {"z", z}});
    CHECK(fg::to_floats(a.at("d")) == fg::to_floats(b.at("d")));
    fg::Session s = fg::load_string(kGraph, o);
    fg::WeightStore init = fg::WeightStore::initialize(s.graph(), 7);
    fg::test::check_close(a.at("d"), naive_dense_relu(x, init));
    o.init_seed = 8;
    auto c = fg::load_string(kGraph, o).run({{"x", x}, {"z", z}});
    CHECK(fg::to_floats(a.at("d")) != fg::to_floats(c.at("d")));
  }
  SUBCASE("weights_file and a file graph") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("fg_api_{}", ::getpid());
    fs::create_directories(dir);
    const fg::WeightStore w = dense_weights(11);
    w.save_safetensors((dir / "w.safetensors").string());
    { std::ofstream(dir / "g.yaml") << kGraph; }
    fg::CompileOptions o;
    o.weights_file = (dir / "w.safetensors").string();
    o.threads = 1;
    fg::Session s = fg::load((dir / "g.yaml").string(), o);
    CHECK(s.threads() == 1);
    fg::test::check_close(s.run({{"x", x}, {"z", z}}).at("d"), naive_dense_relu(x, w));
    fs::remove_all(dir);
  }
  SUBCASE("a graph without weights needs none") {
    fg::Session s = fg::load_string(
        "name: g\ninputs:\n  a: {shape: [4]}\nnodes:\n"
        "  - {name: r, op: activation, input: a, activation: relu}\noutputs: [r]\n");
    auto out = s.run({{"a", fg::tensor_f32({1, 4}, {-1, 2, -3, 4})}});
    CHECK(fg::to_floats(out.at("r")) == std::vector<float>{0, 2, 0, 4});
  }
}

TEST_CASE("api errors") {
  SUBCASE("no weights given") {
    std::string e = error_of([] { fg::load_string(kGraph); });
    CHECK(e.find("no weights were given") != std::string::npos);
    CHECK(e.find("'d.kernel'") != std::string::npos);
    CHECK(e.find("init_seed") != std::string::npos);  // the hint
  }
  SUBCASE("two weight sources") {
    fg::CompileOptions o = with_weights(dense_weights(1));
    o.init_seed = 1;
    CHECK(error_of([&] { fg::load_string(kGraph, o); }).find("at most one weight source") !=
          std::string::npos);
  }
  SUBCASE("weights that do not fit") {
    fg::WeightStore w;
    w.set("d.kernel", fg::test::random_tensor({3, 7}, 1));
    w.set("d.bias", fg::test::random_tensor({3}, 1));
    CHECK(error_of([&] { fg::load_string(kGraph, with_weights(w)); }).find("transposed") !=
          std::string::npos);
  }
  SUBCASE("unknown op with file and line") {
    std::string e = error_of([] {
      fg::load_string(
          "name: g\ninputs:\n  a: {shape: [4]}\nnodes:\n"
          "  - {name: r, op: dens, input: a, units: 2}\noutputs: [r]\n",
          {}, "mine.yaml");
    });
    CHECK(e.find("mine.yaml:5:") != std::string::npos);
    CHECK(e.find("dense") != std::string::npos);  // did you mean
  }
  SUBCASE("missing file") {
    CHECK(error_of([] { fg::load("/nonexistent/graph.yaml"); }).find("/nonexistent/graph.yaml") !=
          std::string::npos);
  }
  SUBCASE("names") {
    fg::Session s = fg::load_string(kGraph, with_weights(dense_weights(1)));
    CHECK(error_of([&] { s.input_type("xx"); }).find("did you mean 'x'") != std::string::npos);
    CHECK(error_of([&] { s.output_type("dd"); }).find("did you mean 'd'") != std::string::npos);
    CHECK(error_of([&] {
            s.output_types({{"x", {1, 7}}});
          }).find("input 'z'") != std::string::npos);
    CHECK(error_of([&] {
            s.output_types({{"x", {1, 8}}, {"z", {1, 2, 2}}});
          }).find("input 'x' expects shape") != std::string::npos);
  }
  SUBCASE("run with bad inputs") {
    fg::Session s = fg::load_string(kGraph, with_weights(dense_weights(1)));
    fg::Tensor x = fg::test::random_tensor({2, 7}, 1), z = fg::test::random_tensor({2, 3, 2}, 2);
    CHECK(error_of([&] { s.run({{"x", x}}); }).find("'z' is missing") != std::string::npos);
    CHECK(error_of([&] {
            s.run({{"x", x}, {"z", z}, {"w", x}});
          }).find("'w'") != std::string::npos);
    CHECK(error_of([&] {
            s.run({{"x", z}, {"z", z}});
          }).find("expects shape") != std::string::npos);
    const fg::Tensor z3 = fg::test::random_tensor({3, 3, 2}, 2);
    CHECK(error_of([&] {
            s.run({{"x", x}, {"z", z3}});
          }).find("inputs 'x' and 'z' have different batch sizes (2 and 3)") != std::string::npos);
  }
  SUBCASE("tensor helpers") {
    CHECK(error_of([] {
            fg::tensor_f32({2, 3}, {1, 2});
          }).find("needs 6 values, got 2") != std::string::npos);
    CHECK(fg::to_floats(fg::tensor_i32({2}, {3, -4})) == std::vector<float>{3, -4});
  }
}

TEST_CASE("api custom op through a registry") {
  const char* yaml =
      "name: g\ninputs:\n  a: {shape: [13]}\nnodes:\n"
      "  - {name: s, op: scale, input: a, scale: -2.5}\n"
      "  - {name: d, op: dense, input: s, units: 5}\noutputs: [s, d]\n";
  CHECK(error_of([&] { fg::load_string(yaml, {}); }).find("unknown op 'scale'") !=
        std::string::npos);

  fg::OpRegistry ops = fg::builtin_ops();
  ops.add(scale_op());
  CHECK(ops.find("scale") != nullptr);
  CHECK(ops.find("dense") != nullptr);
  CHECK(error_of([&] { ops.add(scale_op()); }).find("'scale' is registered twice") !=
        std::string::npos);
  // a built-in cannot be replaced silently
  CHECK(error_of([&] {
          ops.add({"dense", [] { return std::make_unique<Scale>(); }, ""});
        }).find("'dense' is registered twice") != std::string::npos);

  fg::CompileOptions o;
  o.ops = &ops;
  o.init_seed = 3;
  fg::Session s = fg::load_string(yaml, o);
  fg::Tensor a = fg::test::random_tensor({3, 13}, 9);
  auto out = s.run({{"a", a}});
  std::vector<double> want;
  for (size_t i = 0; i < a.size(); ++i) want.push_back(-2.5 * a.data<float>()[i]);
  fg::test::check_close(out.at("s"), want);
  fg::test::check_shape(out.at("d"), {3, 5});

  // the custom op's attribute errors point at the YAML value
  std::string e = error_of([&] {
    fg::load_string(
        "name: g\ninputs:\n  a: {shape: [4]}\nnodes:\n"
        "  - {name: s, op: scale, input: a, scale: 0}\noutputs: [s]\n",
        o, "custom.yaml");
  });
  CHECK(e.find("custom.yaml:5:") != std::string::npos);
  CHECK(e.find("scale must not be 0") != std::string::npos);
  // unknown keys of a custom op are rejected like a built-in's
  e = error_of([&] {
    fg::load_string(
        "name: g\ninputs:\n  a: {shape: [4]}\nnodes:\n"
        "  - {name: s, op: scale, input: a, scal: 2}\noutputs: [s]\n",
        o);
  });
  CHECK(e.find("did you mean 'scale'") != std::string::npos);
}
