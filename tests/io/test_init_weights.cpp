#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/weights.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "io_test_util.hpp"
#include "kernels/kernel.hpp"

using fg::DType;
using fg::Init;
using fg::Tensor;
using fg::WeightSpec;
using fg::WeightStore;
using fg::test::check_error;

namespace {

WeightSpec spec(const std::string& param, fg::Dims shape, Init init, int64_t fan_in = 0,
                int64_t fan_out = 0) {
  WeightSpec s;
  s.param = param;
  s.shape = std::move(shape);
  s.init = init;
  s.fan_in = fan_in;
  s.fan_out = fan_out;
  return s;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

// Max |(M M^T - I)| for M = [rows, cols] stored row-major, or of M^T M when `columns`.
double orthonormality_error(const Tensor& t, int64_t rows, int64_t cols, bool columns) {
  const float* m = t.data<float>();
  const int64_t n = columns ? cols : rows, k = columns ? rows : cols;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t l = 0; l < k; ++l)
        dot += columns ? double(m[l * cols + i]) * m[l * cols + j]
                       : double(m[i * cols + l]) * m[j * cols + l];
      worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("initial weights are deterministic in seed and key") {
  WeightSpec k = spec("kernel", {13, 7}, Init::glorot_uniform, 13, 7);
  Tensor a = fg::initial_weight("dense.kernel", k, 42);
  CHECK(same_bits(a, fg::initial_weight("dense.kernel", k, 42)));
  CHECK_FALSE(same_bits(a, fg::initial_weight("dense.kernel", k, 43)));
  CHECK_FALSE(same_bits(a, fg::initial_weight("dense_1.kernel", k, 42)));
  WeightSpec o = spec("recurrent_kernel", {5, 20}, Init::orthogonal);
  CHECK(same_bits(fg::initial_weight("lstm.recurrent_kernel", o, 7),
                  fg::initial_weight("lstm.recurrent_kernel", o, 7)));
}

TEST_CASE("zeros and ones initialisers") {
  Tensor z = fg::initial_weight("bn.beta", spec("beta", {13}, Init::zeros), 1);
  Tensor o = fg::initial_weight("bn.gamma", spec("gamma", {13}, Init::ones), 1);
  for (size_t i = 0; i < 13; ++i) {
    CHECK(z.data<float>()[i] == 0.0f);
    CHECK(o.data<float>()[i] == 1.0f);
  }
}

TEST_CASE("glorot_uniform stays within its limit and has the uniform variance") {
  const int64_t fan_in = 127, fan_out = 64;
  Tensor t = fg::initial_weight(
      "d.kernel", spec("kernel", {fan_in, fan_out}, Init::glorot_uniform, fan_in, fan_out), 3);
  const double limit = std::sqrt(6.0 / (fan_in + fan_out));
  double sum = 0, sq = 0, biggest = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    double v = t.data<float>()[i];
    CHECK(std::abs(v) <= limit);
    sum += v;
    sq += v * v;
    biggest = std::max(biggest, std::abs(v));
  }
  const double n = static_cast<double>(t.size());
  CHECK(std::abs(sum / n) < 0.05 * limit);
  CHECK(sq / n == doctest::Approx(limit * limit / 3).epsilon(0.06));
  CHECK(biggest > 0.99 * limit);
}

TEST_CASE("glorot_uniform computes Keras fans from the shape when the op gives none") {
  // conv kernel [3, 3, 8, 16]: receptive field 9, fan_in 72, fan_out 144
  Tensor t = fg::initial_weight("c.kernel", spec("kernel", {3, 3, 8, 16}, Init::glorot_uniform), 5);
  const double limit = std::sqrt(6.0 / (72 + 144));
  double biggest = 0;
  for (size_t i = 0; i < t.size(); ++i)
    biggest = std::max(biggest, double(std::abs(t.data<float>()[i])));
  CHECK(biggest <= limit);
  CHECK(biggest > 0.97 * limit);
}

TEST_CASE("orthogonal gives orthonormal rows or columns as Keras does") {
  SUBCASE("wide [5, 20] has orthonormal rows") {
    Tensor t = fg::initial_weight("l.recurrent_kernel",
                                  spec("recurrent_kernel", {5, 20}, Init::orthogonal), 1);
    CHECK(orthonormality_error(t, 5, 20, false) < 1e-5);
  }
  SUBCASE("tall [20, 5] has orthonormal columns") {
    Tensor t = fg::initial_weight("l.k", spec("k", {20, 5}, Init::orthogonal), 1);
    CHECK(orthonormality_error(t, 20, 5, true) < 1e-5);
  }
  SUBCASE("square [7, 7] is orthogonal both ways") {
    Tensor t = fg::initial_weight("l.k", spec("k", {7, 7}, Init::orthogonal), 2);
    CHECK(orthonormality_error(t, 7, 7, false) < 1e-5);
    CHECK(orthonormality_error(t, 7, 7, true) < 1e-5);
  }
  SUBCASE("rank 3 flattens the leading dims into rows") {
    Tensor t = fg::initial_weight("l.k", spec("k", {2, 3, 13}, Init::orthogonal), 2);
    CHECK(orthonormality_error(t, 6, 13, false) < 1e-5);
  }
  SUBCASE("rank 1 is an error") {
    check_error([] { fg::initial_weight("l.k", spec("k", {5}, Init::orthogonal), 2); },
                {"tensor 'l.k'", "rank >= 2"});
  }
}

TEST_CASE("uniform_embedding lies in the Keras range") {
  Tensor t = fg::initial_weight("emb.embeddings",
                                spec("embeddings", {1000, 16}, Init::uniform_embedding), 9);
  float lo = 1, hi = -1;
  for (size_t i = 0; i < t.size(); ++i) {
    lo = std::min(lo, t.data<float>()[i]);
    hi = std::max(hi, t.data<float>()[i]);
  }
  CHECK(lo >= -0.05f);
  CHECK(hi <= 0.05f);
  CHECK(lo < -0.049f);
  CHECK(hi > 0.049f);
}

TEST_CASE("lstm_bias sets the forget gate quarter to one") {
  const int units = 7;
  Tensor t = fg::initial_weight("lstm.bias", spec("bias", {4 * units}, Init::lstm_bias), 1);
  for (int i = 0; i < 4 * units; ++i)
    CHECK(t.data<float>()[i] == (i >= units && i < 2 * units ? 1.0f : 0.0f));
  check_error([] { fg::initial_weight("lstm.bias", spec("bias", {10}, Init::lstm_bias), 1); },
              {"tensor 'lstm.bias'", "divisible by 4", "(10,)"});
}

TEST_CASE("initialising a weight of unknown shape is an error") {
  check_error(
      [] {
        fg::initial_weight("d.kernel", spec("kernel", {fg::kDynamic, 4}, Init::zeros), 1);
      },
      {"tensor 'd.kernel'", "unknown shape (None, 4)"});
}

TEST_CASE("an initialised store validates against its specs and survives a save and load") {
  WeightStore::SpecList specs = {
      {"dense.kernel", spec("kernel", {13, 7}, Init::glorot_uniform, 13, 7)},
      {"dense.bias", spec("bias", {7}, Init::zeros)},
      {"lstm.recurrent_kernel", spec("recurrent_kernel", {3, 12}, Init::orthogonal)},
      {"lstm.bias", spec("bias", {12}, Init::lstm_bias)},
  };
  WeightStore store = WeightStore::initialize(specs, 1234);
  CHECK(store.tensors().size() == 4);
  CHECK_NOTHROW(store.validate(specs));
  fg::test::TempDir dir;
  store.save_safetensors(dir.file("init.safetensors"));
  WeightStore back = WeightStore::load_safetensors(dir.file("init.safetensors"));
  CHECK_NOTHROW(back.validate(specs));
  for (const auto& [key, t] : store.tensors()) CHECK(same_bits(t, *back.find(key)));
}

TEST_CASE("validate reports every problem at once") {
  WeightStore::SpecList specs = {
      {"dense.kernel", spec("kernel", {3, 4}, Init::glorot_uniform)},
      {"dense.bias", spec("bias", {4}, Init::zeros)},
      {"gru.kernel", spec("kernel", {4, 12}, Init::glorot_uniform)},
      {"emb.embeddings", spec("embeddings", {10, 4}, Init::uniform_embedding)},
  };
  WeightStore store;
  store.set_source("model.safetensors");
  store.set("dense.kernel", Tensor(DType::f32, {4, 3}));     // transposed
  store.set("dense.bais", Tensor(DType::f32, {4}));          // misspelt
  store.set("emb.embeddings", Tensor(DType::i32, {10, 4}));  // wrong dtype
  store.set("zzzz.qqqq", Tensor(DType::f32, {1}));           // nothing like it
  // gru.kernel missing
  check_error(
      [&] { store.validate(specs); },
      {"model.safetensors", "6 problems",
       "tensor 'dense.kernel' (node 'dense', param 'kernel'): expected shape (3, 4), found (4, 3)",
       "transposed",
       "missing tensor 'dense.bias' (node 'dense', param 'bias'): expected Keras shape (4,)",
       "missing tensor 'gru.kernel' (node 'gru', param 'kernel'): expected Keras shape (4, 12)",
       "tensor 'emb.embeddings'", "expected float32, found int32",
       "unexpected tensor 'dense.bais': did you mean 'dense.bias'?",
       "unexpected tensor 'zzzz.qqqq': the graph has no such weight"});
}

TEST_CASE("validate hints at key naming when nothing matches") {
  WeightStore::SpecList specs = {{"dense.kernel", spec("kernel", {3, 4}, Init::glorot_uniform)}};
  WeightStore store;
  check_error([&] { store.validate(specs); },
              {"1 problem", "missing tensor 'dense.kernel'", "'<node>.<param>'"});
  CHECK_NOTHROW(WeightStore().validate(WeightStore::SpecList{}));
}

// ---- against a compiled graph, with a small op defined here (no built-in op needed) ----

namespace {

class ToyDense : public fg::Op {
 public:
  void parse(fg::AttrReader& attrs) override { units_ = attrs.get_positive_int("units"); }
  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    return {fg::TensorType{{ctx.input(0).shape[0], units_}, DType::f32, false}};
  }
  std::vector<WeightSpec> weights(const fg::InferContext& ctx) const override {
    int64_t in = ctx.input(0).shape.back();
    return {spec("kernel", {in, units_}, Init::glorot_uniform, in, units_),
            spec("bias", {units_}, Init::zeros)};
  }
  fg::KernelBuild compile(const fg::KernelContext&) const override {
    throw fg::Error("toy_dense only exists for weight tests");
  }

 private:
  int64_t units_ = 0;
};

fg::CompiledGraph toy_graph() {
  fg::OpRegistry registry;
  registry.add(fg::OpInfo{"toy_dense", [] { return std::make_unique<ToyDense>(); }, "test op"});
  auto def = fg::load_graph_string(R"(
name: toy
inputs:
  x: {shape: [5]}
nodes:
  - {name: d1, op: toy_dense, input: x, units: 3}
  - {name: d2, op: toy_dense, input: d1, units: 2}
outputs: [d2]
)",
                                   "toy.yaml");
  return fg::compile_graph(def, registry);
}

}  // namespace

TEST_CASE("initialize and validate work on a compiled graph") {
  fg::CompiledGraph graph = toy_graph();
  WeightStore store = WeightStore::initialize(graph, 11);
  std::vector<std::string> keys;
  for (const auto& [key, t] : store.tensors()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"d1.bias", "d1.kernel", "d2.bias", "d2.kernel"});
  CHECK(store.find("d1.kernel")->shape() == fg::Dims{5, 3});
  CHECK(store.find("d2.kernel")->shape() == fg::Dims{3, 2});
  CHECK_NOTHROW(store.validate(graph));

  WeightStore wrong;
  wrong.set_source("toy.safetensors");
  wrong.set("d1.kernel", *store.find("d1.kernel"));
  wrong.set("d1.bias", *store.find("d1.bias"));
  wrong.set("d2.kernel", Tensor(DType::f32, {2, 3}));
  wrong.set("d2.kernal", Tensor(DType::f32, {3, 2}));
  check_error(
      [&] { wrong.validate(graph); },
      {"toy.safetensors", "3 problems",
       "missing tensor 'd2.bias' (node 'd2', param 'bias'): expected Keras shape (2,)",
       "tensor 'd2.kernel' (node 'd2', param 'kernel'): expected shape (3, 2), found (2, 3)",
       "unexpected tensor 'd2.kernal': did you mean 'd2.kernel'?"});
}
