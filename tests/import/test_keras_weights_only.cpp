// A model saved as a JSON config (model.to_json()) and a weights-only HDF5 file
// (model.save_weights()): Keras 2's layout (layer_names / weight_names at the root) and Keras
// 3's `.weights.h5` (layers/<class>/vars), both written at test time
// (tests/import/keras_writers.hpp); `graph-runner import model.json --weights-h5 w.h5`.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>
#include <fusiongraph/import.hpp>

#include "framework/compiler.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

// model.to_json() of a Keras 2.3 Sequential: Dense(5, relu) on 7 features, then Dense(3).
const char* kConfig =
    R"({"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [{"class_name": "Dense", "config": {"name": "hidden", "trainable": true, "batch_input_shape": [null, 7], "dtype": "float32", "units": 5, "activation": "relu", "use_bias": true}}, {"class_name": "Dense", "config": {"name": "out", "trainable": true, "units": 3, "activation": "linear", "use_bias": true}}]}, "keras_version": "2.3.1", "backend": "tensorflow"})";

struct Weights {
  Tensor k1 = test::random_tensor({7, 5}, 1), b1 = test::random_tensor({5}, 2);
  Tensor k2 = test::random_tensor({5, 3}, 3), b2 = test::random_tensor({3}, 4);
};

// relu(x k1 + b1) k2 + b2, in double.
std::vector<double> expected(const Weights& w, const Tensor& x) {
  const int64_t batch = x.shape()[0];
  std::vector<double> out;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<double> h(5);
    for (int j = 0; j < 5; ++j) {
      double s = w.b1.data<float>()[j];
      for (int i = 0; i < 7; ++i)
        s += double(x.data<float>()[b * 7 + i]) * w.k1.data<float>()[i * 5 + j];
      h[j] = s > 0 ? s : 0;
    }
    for (int j = 0; j < 3; ++j) {
      double s = w.b2.data<float>()[j];
      for (int i = 0; i < 5; ++i) s += h[i] * w.k2.data<float>()[i * 3 + j];
      out.push_back(s);
    }
  }
  return out;
}

void check_runs_like_keras(const ImportedModel& m, const Weights& w) {
  Model model(std::make_shared<CompiledGraph>(compile_graph(m.graph, builtin_ops())), m.weights);
  const Tensor x = test::random_tensor({3, 7}, 5);
  const auto out = model.run({{"hidden_input", x}});
  const std::vector<double> got = test::to_doubles(out.at("out")), want = expected(w, x);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

}  // namespace

TEST_CASE("weights-only .h5 (Keras 2 save_weights) with a JSON config") {
  test::NamedTempDir dir("fg_keras_weights", "k2");
  const Weights w;
  const std::string json = test::write_text(dir.path + "/model.json", kConfig);
  const std::string h5 = dir.path + "/weights.h5";
  test::write_legacy_weights(h5, {"hidden", "out"},
                             {{"hidden", {{"kernel:0", w.k1}, {"bias:0", w.b1}}},
                              {"out", {{"kernel:0", w.k2}, {"bias:0", w.b2}}}});
  const ImportedModel m = import_keras_config(json, h5);
  CHECK(m.keras_version == "2.3.1");
  check_runs_like_keras(m, w);
  REQUIRE(!m.header.empty());
  CHECK(m.header[0].find("with the weights of " + h5) != std::string::npos);

  // through the command line
  const std::string g = dir.path + "/g.yaml", s = dir.path + "/w.safetensors";
  auto r = test::run_cli(
      fmt::format("import {} --weights-h5 {} --graph {} --weights {}", json, h5, g, s));
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(std::filesystem::exists(g));
  CHECK(std::filesystem::exists(s));
  // the weights file alone says how to import it, and writes nothing
  const std::string g2 = dir.path + "/g2.yaml", s2 = dir.path + "/w2.safetensors";
  r = test::run_cli(fmt::format("import {} --graph {} --weights {}", h5, g2, s2));
  CHECK(r.code == 1);
  CHECK(r.out.find("weights-only HDF5 file") != std::string::npos);
  CHECK(r.out.find("--weights-h5") != std::string::npos);
  // the JSON alone too
  r = test::run_cli(fmt::format("import {} --graph {} --weights {}", json, g2, s2));
  CHECK(r.code == 1);
  CHECK(r.out.find("a JSON model config: its weights are in a separate file") != std::string::npos);
  CHECK(!std::filesystem::exists(g2));
  CHECK(!std::filesystem::exists(s2));
  // a whole model file given as the weights
  const std::string whole = dir.path + "/whole.h5";
  test::write_legacy_model(whole, kConfig, {"hidden", "out"}, {});
  CHECK_THROWS_WITH_AS(import_keras_config(json, whole),
                       doctest::Contains("a whole model file (model.save)"), Error);
  // a weight missing from the weights file names the layer
  test::write_legacy_weights(
      h5, {"hidden", "out"},
      {{"hidden", {{"kernel:0", w.k1}, {"bias:0", w.b1}}}, {"out", {{"kernel:0", w.k2}}}});
  CHECK_THROWS_WITH_AS(import_keras_config(json, h5), doctest::Contains("layer 'out' (Dense)"),
                       Error);
}

TEST_CASE("weights-only Keras 3 .weights.h5 with a JSON config") {
  test::NamedTempDir dir("fg_keras_weights", "k3");
  const Weights w;
  // Keras 3's to_json(): InputLayer first, DTypePolicy dicts; the weights by class, not name
  const std::string config =
      R"({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 7], "dtype": "float32", "sparse": false, "name": "hidden_input"}, "registered_name": null}, {"module": "keras.layers", "class_name": "Dense", "config": {"name": "hidden", "trainable": true, "units": 5, "activation": "relu", "use_bias": true}, "registered_name": null}, {"module": "keras.layers", "class_name": "Dense", "config": {"name": "out", "trainable": true, "units": 3, "activation": "linear", "use_bias": true}, "registered_name": null}]}, "registered_name": null})";
  const std::string json = test::write_text(dir.path + "/model.json", config);
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(h5,
                         {{"layers/dense/vars/0", w.k1},
                          {"layers/dense/vars/1", w.b1},
                          {"layers/dense_1/vars/0", w.k2},
                          {"layers/dense_1/vars/1", w.b2}},
                         {"vars"});
  const ImportedModel m = import_keras_config(json, h5);
  CHECK(m.keras_version == "3");
  check_runs_like_keras(m, w);
  // the first Dense's weights under the second's group: shapes mismatch, named
  test::write_weights_h5(h5,
                         {{"layers/dense/vars/0", w.k2},
                          {"layers/dense/vars/1", w.b2},
                          {"layers/dense_1/vars/0", w.k1},
                          {"layers/dense_1/vars/1", w.b1}},
                         {"vars"});
  CHECK_THROWS_WITH_AS(import_keras_config(json, h5), doctest::Contains("layer 'hidden' (Dense)"),
                       Error);
}
