// Keras Masking, RepeatVector and PReLU imported from the three formats: a legacy `.h5`
// (Keras 2), a Keras 3 `.keras` archive (tests/import/keras_writers.hpp) and a TF.js layers
// model.json with its shard, all written at test time by the formats' rules with random
// weights. The model Masking -> LSTM -> (RepeatVector) -> PReLU runs on inputs with padded steps
// (at the end and in the middle, and one row padded wholly), and every layer is compared with
// naive loop references written here (masking, repeat, prelu) and the naive masked LSTM of
// tests/reference/recurrent.hpp: a masked step keeps the state and its output repeats the
// previous output (zeros before the first kept step), as Keras computes.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>
#include <fusiongraph/import.hpp>
#include <nlohmann/json.hpp>

#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using json = nlohmann::json;

namespace {

using test::check_imported;

constexpr int64_t kBatch = 3, kSteps = 6, kFeatures = 4, kUnits = 5;

// Rows: right-padded (steps 4, 5), a hole (step 2) and one step with a single feature at the
// mask value (kept), wholly padded.
Tensor padded_input(float mask_value) {
  Tensor x = test::random_tensor({kBatch, kSteps, kFeatures}, 211, -2.f, 2.f);
  float* p = x.mutable_data<float>();
  auto pad = [&](int64_t b, int64_t t) {
    std::fill_n(p + (b * kSteps + t) * kFeatures, kFeatures, mask_value);
  };
  pad(0, 4), pad(0, 5), pad(1, 2);
  p[(1 * kSteps + 3) * kFeatures + 1] = mask_value;
  for (int64_t t = 0; t < kSteps; ++t) pad(2, t);
  return x;
}

struct Masked {
  std::vector<double> y;
  std::vector<uint8_t> mask;
};

Masked naive_masking(const Tensor& x, float mask_value) {
  Masked m;
  const float* p = x.data<float>();
  for (int64_t s = 0; s < kBatch * kSteps; ++s) {
    bool keep = false;
    for (int64_t f = 0; f < kFeatures; ++f) keep = keep || p[s * kFeatures + f] != mask_value;
    m.mask.push_back(keep);
    for (int64_t f = 0; f < kFeatures; ++f) m.y.push_back(keep ? p[s * kFeatures + f] : 0.0);
  }
  return m;
}

std::vector<double> naive_repeat(const std::vector<double>& x, int64_t rows, int64_t n,
                                 int64_t features) {
  std::vector<double> y;
  for (int64_t b = 0; b < rows; ++b)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t f = 0; f < features; ++f) y.push_back(x[b * features + f]);
  return y;
}

// x [rows, inner...] with alpha of the per-sample shape (1 = shared axis).
std::vector<double> naive_prelu(const std::vector<double>& x, const Dims& sample,
                                const Tensor& alpha) {
  const Dims& a = alpha.shape();
  int64_t per_sample = 1;
  for (Dim d : sample) per_sample *= d;
  std::vector<double> y(x.size());
  for (size_t n = 0; n < x.size(); ++n) {
    int64_t rest = static_cast<int64_t>(n) % per_sample, index = 0, stride = 1;
    for (size_t k = sample.size(); k-- > 0;) {
      const int64_t i = rest % sample[k];
      rest /= sample[k];
      index += (a[k] == 1 ? 0 : i) * stride;
      stride *= a[k];
    }
    y[n] = x[n] >= 0 ? x[n] : alpha.data<float>()[index] * x[n];
  }
  return y;
}

Tensor tensor_of(const Dims& shape, const std::vector<double>& data) {
  Tensor t(DType::f32, shape);
  REQUIRE(static_cast<size_t>(t.size()) == data.size());
  for (size_t i = 0; i < data.size(); ++i) t.mutable_data<float>()[i] = static_cast<float>(data[i]);
  return t;
}

struct Weights {
  Tensor kernel = test::random_tensor({kFeatures, 4 * kUnits}, 221);
  Tensor recurrent = test::random_tensor({kUnits, 4 * kUnits}, 222);
  Tensor bias = test::random_tensor({4 * kUnits}, 223);
  Tensor alpha;
};

// The expected activations of Masking -> LSTM -> [RepeatVector(repeat)] -> PReLU.
std::map<std::string, Tensor> expected(const Tensor& x, float mask_value, bool sequences,
                                       int64_t repeat, const Weights& w) {
  const Masked m = naive_masking(x, mask_value);
  const std::vector<float> mf(m.y.begin(), m.y.end());
  ref::RnnArgs a;
  a.batch = kBatch, a.steps = kSteps, a.features = kFeatures, a.units = kUnits;
  a.return_sequences = sequences;
  a.x = mf.data(), a.kernel = w.kernel.data<float>(), a.recurrent = w.recurrent.data<float>();
  a.bias = w.bias.data<float>(), a.mask = m.mask.data();
  const std::vector<double> h = ref::rnn(a);
  std::map<std::string, Tensor> out{{"mask", tensor_of({kBatch, kSteps, kFeatures}, m.y)}};
  if (sequences) {
    out["lstm"] = tensor_of({kBatch, kSteps, kUnits}, h);
    out["prelu"] = tensor_of({kBatch, kSteps, kUnits}, naive_prelu(h, {kSteps, kUnits}, w.alpha));
  } else {
    out["lstm"] = tensor_of({kBatch, kUnits}, h);
    const std::vector<double> r = naive_repeat(h, kBatch, repeat, kUnits);
    out["repeat"] = tensor_of({kBatch, repeat, kUnits}, r);
    out["prelu"] = tensor_of({kBatch, repeat, kUnits}, naive_prelu(r, {repeat, kUnits}, w.alpha));
  }
  return out;
}

// A Keras 2 Sequential (the layers' configs as Keras 2 writes them).
json keras2_config(float mask_value, bool sequences, int64_t repeat, const json& shared_axes) {
  json layers = json::array();
  layers.push_back({{"class_name", "Masking"},
                    {"config",
                     {{"name", "mask"},
                      {"trainable", true},
                      {"batch_input_shape", {nullptr, kSteps, kFeatures}},
                      {"dtype", "float32"},
                      {"mask_value", mask_value}}}});
  layers.push_back({{"class_name", "LSTM"},
                    {"config",
                     {{"name", "lstm"},
                      {"trainable", true},
                      {"return_sequences", sequences},
                      {"return_state", false},
                      {"go_backwards", false},
                      {"stateful", false},
                      {"unroll", false},
                      {"units", kUnits},
                      {"activation", "tanh"},
                      {"recurrent_activation", "sigmoid"},
                      {"use_bias", true},
                      {"unit_forget_bias", true},
                      {"dropout", 0.0},
                      {"recurrent_dropout", 0.0},
                      {"implementation", 2}}}});
  if (!sequences)
    layers.push_back({{"class_name", "RepeatVector"},
                      {"config", {{"name", "repeat"}, {"trainable", true}, {"n", repeat}}}});
  layers.push_back({{"class_name", "PReLU"},
                    {"config",
                     {{"name", "prelu"},
                      {"trainable", true},
                      {"alpha_initializer", {{"class_name", "Zeros"}, {"config", json::object()}}},
                      {"alpha_regularizer", nullptr},
                      {"alpha_constraint", nullptr},
                      {"shared_axes", shared_axes}}}});
  return {{"class_name", "Sequential"}, {"config", {{"name", "sequential"}, {"layers", layers}}}};
}

}  // namespace

TEST_CASE(
    "Keras import (.h5): Masking -> LSTM(return_sequences) -> PReLU, masked steps keep "
    "the state") {
  test::NamedTempDir dir("fg_keras_small", "h5");
  Weights w;
  w.alpha = test::random_tensor({kSteps, kUnits}, 224, -0.5f, 1.5f);
  const json config = keras2_config(0.f, true, 0, nullptr);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config.dump(), {"mask", "lstm", "prelu"},
      {{"lstm", {{"kernel:0", w.kernel}, {"recurrent_kernel:0", w.recurrent}, {"bias:0", w.bias}}},
       {"prelu", {{"alpha:0", w.alpha}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("op: masking") != std::string::npos);
  CHECK(yaml.find("mask_value") == std::string::npos);  // the default 0 is not written
  CHECK(yaml.find("op: prelu") != std::string::npos);
  CHECK(yaml.find("shared_axes") == std::string::npos);
  const Tensor x = padded_input(0.f);
  const auto want = expected(x, 0.f, true, 0, w);
  // Keras semantics, checked on the reference itself: row 0's padded steps 4, 5 repeat step 3's
  // output; row 2 (all padding) stays at the zero state.
  const float* h = want.at("lstm").data<float>();
  for (int64_t j = 0; j < kUnits; ++j) {
    CHECK(h[(0 * kSteps + 4) * kUnits + j] == h[(0 * kSteps + 3) * kUnits + j]);
    CHECK(h[(1 * kSteps + 2) * kUnits + j] == h[(1 * kSteps + 1) * kUnits + j]);
    CHECK(h[(2 * kSteps + 5) * kUnits + j] == 0.f);
  }
  check_imported(m, {{"mask_input", x}}, want);
  // the summary's parameters: Keras's model.summary() counts 4 * (5 * (4 + 5) + 5) and 6 * 5
  const auto graph = compile_graph(load_graph_string(yaml), builtin_ops());
  const Summary s = summarize(graph, {});
  CHECK(s.total_params == 4 * (kUnits * (kFeatures + kUnits) + kUnits) + kSteps * kUnits);
}

TEST_CASE("Keras import (.h5): shared_axes as an int, a mask value, RepeatVector") {
  test::NamedTempDir dir("fg_keras_small", "h5int");
  Weights w;
  w.alpha = test::random_tensor({3, 1}, 225, -0.5f, 1.5f);
  // Keras 2 keeps an int shared_axes as given in get_config when the layer was built from a
  // config that had one
  const json config = keras2_config(-1.f, false, 3, 2);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config.dump(), {"mask", "lstm", "repeat", "prelu"},
      {{"lstm", {{"kernel:0", w.kernel}, {"recurrent_kernel:0", w.recurrent}, {"bias:0", w.bias}}},
       {"prelu", {{"alpha:0", w.alpha}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("mask_value: -1") != std::string::npos);
  CHECK(yaml.find("shared_axes: [2]") != std::string::npos);
  CHECK(yaml.find("n: 3") != std::string::npos);
  const Tensor x = padded_input(-1.f);
  check_imported(m, {{"mask_input", x}}, expected(x, -1.f, false, 3, w));
}

TEST_CASE("Keras import (.keras): Masking -> LSTM -> RepeatVector -> PReLU(shared_axes [1])") {
  test::NamedTempDir dir("fg_keras_small", "k3");
  Weights w;
  w.alpha = test::random_tensor({1, kUnits}, 226, -0.5f, 1.5f);
  const std::string dtype =
      R"("dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}})";
  auto layer = [&](const std::string& cls, const std::string& fields) {
    return fmt::format(
        R"({{"module": "keras.layers", "class_name": "{}", "config": {{"trainable": true, {}, {}}}, "registered_name": null}})",
        cls, dtype, fields);
  };
  const std::string config = fmt::format(
      R"({{"module": "keras", "class_name": "Sequential", "config": {{"name": "sequential", "trainable": true, "layers": [{}, {}, {}, {}, {}]}}, "registered_name": null}})",
      fmt::format(
          R"({{"module": "keras.layers", "class_name": "InputLayer", "config": {{"batch_shape": [null, {}, {}], "dtype": "float32", "sparse": false, "name": "x"}}, "registered_name": null}})",
          kSteps, kFeatures),
      layer("Masking", R"("name": "mask", "mask_value": 0.0)"),
      layer(
          "LSTM",
          fmt::format(
              R"("name": "lstm", "return_sequences": false, "return_state": false, "go_backwards": false, "stateful": false, "unroll": false, "units": {}, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true, "unit_forget_bias": true, "dropout": 0.0, "recurrent_dropout": 0.0, "seed": null)",
              kUnits)),
      layer("RepeatVector", R"("name": "repeat", "n": 7)"),
      layer(
          "PReLU",
          R"("name": "prelu", "alpha_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "alpha_regularizer": null, "alpha_constraint": null, "shared_axes": [1])"));
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(
      h5,
      {{"layers/lstm/cell/vars/0", w.kernel},
       {"layers/lstm/cell/vars/1", w.recurrent},
       {"layers/lstm/cell/vars/2", w.bias},
       {"layers/p_re_lu/vars/0", w.alpha}},
      {"vars", "layers/masking/vars", "layers/lstm/vars", "layers/repeat_vector/vars"});
  test::write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("shared_axes: [1]") != std::string::npos);
  CHECK(yaml.find("n: 7") != std::string::npos);
  const Tensor x = padded_input(0.f);
  check_imported(m, {{"x", x}}, expected(x, 0.f, false, 7, w));
}

TEST_CASE("Keras import (TF.js): Masking -> LSTM -> RepeatVector -> PReLU from model.json") {
  test::NamedTempDir dir("fg_keras_small", "tfjs");
  Weights w;
  w.alpha = test::random_tensor({4, kUnits}, 227, -0.5f, 1.5f);
  const json config = keras2_config(0.5f, false, 4, nullptr);
  // tfjs-converter: one group, the weights "<layer>/<variable>" back to back in float32, the
  // bytes cut into two shards (the cut falls inside the recurrent kernel)
  const std::vector<std::pair<std::string, const Tensor*>> weights = {
      {"lstm/lstm_cell/kernel", &w.kernel},
      {"lstm/lstm_cell/recurrent_kernel", &w.recurrent},
      {"lstm/lstm_cell/bias", &w.bias},
      {"prelu/alpha", &w.alpha}};
  std::string bytes;
  json entries = json::array();
  for (const auto& [name, t] : weights) {
    bytes.append(reinterpret_cast<const char*>(t->data<float>()), t->size() * sizeof(float));
    entries.push_back({{"name", name}, {"shape", t->shape()}, {"dtype", "float32"}});
  }
  const size_t cut = bytes.size() / 2 + 2;
  std::ofstream(dir.path + "/group1-shard1of2.bin", std::ios::binary) << bytes.substr(0, cut);
  std::ofstream(dir.path + "/group1-shard2of2.bin", std::ios::binary) << bytes.substr(cut);
  const json model = {
      {"format", "layers-model"},
      {"generatedBy", "keras v2.13.1"},
      {"convertedBy", "TensorFlow.js Converter v4.10.0"},
      {"modelTopology",
       {{"keras_version", "2.13.1"}, {"backend", "tensorflow"}, {"model_config", config}}},
      {"weightsManifest", json::array({{{"paths", {"group1-shard1of2.bin", "group1-shard2of2.bin"}},
                                        {"weights", entries}}})}};
  const std::string path = test::write_text(dir.path + "/model.json", model.dump());
  // padded with 0.5: PReLU alpha [4, 5] for RepeatVector(4)'s output
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("mask_value: 0.5") != std::string::npos);
  const Tensor x = padded_input(0.5f);
  check_imported(m, {{"mask_input", x}}, expected(x, 0.5f, false, 4, w));
}

TEST_CASE("Keras import: a PReLU whose alpha does not fit its input is a clear error") {
  test::NamedTempDir dir("fg_keras_small", "bad");
  Weights w;
  w.alpha = test::random_tensor({kSteps, kUnits}, 228);  // shared_axes [1] wants [1, 5]
  const json config = keras2_config(0.f, true, 0, json::array({1}));
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config.dump(), {"mask", "lstm", "prelu"},
      {{"lstm", {{"kernel:0", w.kernel}, {"recurrent_kernel:0", w.recurrent}, {"bias:0", w.bias}}},
       {"prelu", {{"alpha:0", w.alpha}}}});
  std::string message;
  try {
    import_keras_model(path);
  } catch (const Error& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(message.find("prelu") != std::string::npos);
  CHECK(message.find("alpha") != std::string::npos);
}
