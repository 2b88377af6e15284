// Keras SimpleRNN imported from each format, written at test time by the formats' rules: a
// legacy .h5 of Keras 2 (kernel, recurrent_kernel, bias) and of Keras 1 (W, U, b; output_dim), a
// Keras 3 .keras archive (layers/simple_rnn[_N]/cell/vars/<i>) and a TF.js layers model
// (model.json and a float32 shard, weights "<layer>/[simple_rnn_cell/]kernel"). Each import is
// read back from its written YAML, run, and compared with a naive loop reference written here
// from the Keras formula h_t = activation(x_t W + h_{t-1} U + b) and Keras's mask rule.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <fusiongraph/import.hpp>
#include <nlohmann/json.hpp>

#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

using test::check_imported;
using test::import_error;

// The Keras SimpleRNN forward in double over [B, T, F] (mask [B, T] or nullptr: a masked step
// keeps the state and repeats the previous output).
std::vector<double> naive_simple_rnn(const std::vector<double>& x, int64_t B, int64_t T, int64_t F,
                                     const Tensor& kernel, const Tensor& recurrent,
                                     const Tensor* bias, const std::string& activation,
                                     bool return_sequences, const std::vector<uint8_t>& mask = {}) {
  const int64_t U = kernel.shape()[1];
  auto act = [&](double v) {
    if (activation == "relu") return v > 0 ? v : 0.0;
    if (activation == "sigmoid") return 1.0 / (1.0 + std::exp(-v));
    if (activation == "linear") return v;
    return std::tanh(v);
  };
  const float* W = kernel.data<float>();
  const float* R = recurrent.data<float>();
  std::vector<double> out(static_cast<size_t>(B * (return_sequences ? T : 1) * U), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h(static_cast<size_t>(U), 0.0), next(static_cast<size_t>(U));
    for (int64_t t = 0; t < T; ++t) {
      if (mask.empty() || mask[static_cast<size_t>(b * T + t)] != 0) {
        for (int64_t j = 0; j < U; ++j) {
          double s = bias != nullptr ? bias->data<float>()[j] : 0.0;
          for (int64_t f = 0; f < F; ++f) s += x[(b * T + t) * F + f] * W[f * U + j];
          for (int64_t i = 0; i < U; ++i) s += h[i] * R[i * U + j];
          next[j] = act(s);
        }
        h = next;
      }
      if (return_sequences)
        for (int64_t j = 0; j < U; ++j) out[(b * T + t) * U + j] = h[j];
    }
    if (!return_sequences)
      for (int64_t j = 0; j < U; ++j) out[b * U + j] = h[j];
  }
  return out;
}

Tensor tensor_of(const Dims& shape, const std::vector<double>& data) {
  Tensor t(DType::f32, shape);
  REQUIRE(static_cast<size_t>(t.size()) == data.size());
  for (size_t i = 0; i < data.size(); ++i) t.mutable_data<float>()[i] = static_cast<float>(data[i]);
  return t;
}

std::string k2_sequential(const std::vector<std::string>& layers) {
  std::string list;
  for (const auto& l : layers) list += (list.empty() ? "" : ", ") + l;
  return R"({"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [)" + list +
         "]}}";
}

std::string k2_layer(const std::string& cls, const std::string& name, const std::string& fields) {
  return fmt::format(R"({{"class_name": "{}", "config": {{"name": "{}", "trainable": true, {}}}}})",
                     cls, name, fields);
}

std::string simple_rnn_fields(int64_t units, const std::string& activation, bool seq,
                              const std::string& extra = "") {
  return fmt::format(
      R"({}"units": {}, "activation": "{}", "use_bias": true, "return_sequences": {}, "return_state": false, "go_backwards": false, "stateful": false, "unroll": false, "kernel_initializer": {{"class_name": "GlorotUniform", "config": {{"seed": null}}}}, "recurrent_initializer": {{"class_name": "Orthogonal", "config": {{"gain": 1.0, "seed": null}}}}, "bias_initializer": {{"class_name": "Zeros", "config": {{}}}}, "dropout": 0.0, "recurrent_dropout": 0.0)",
      extra, units, activation, seq ? "true" : "false");
}

}  // namespace

TEST_CASE("Keras 2 .h5: Embedding(mask_zero), SimpleRNN(relu, sequences), SimpleRNN(tanh)") {
  test::NamedTempDir dir("fg_keras_simple_rnn", "k2");
  const std::string config = k2_sequential(
      {k2_layer(
           "Embedding", "emb",
           R"("batch_input_shape": [null, 9], "dtype": "float32", "input_dim": 11, "output_dim": 5, "mask_zero": true, "input_length": 9)"),
       k2_layer("SimpleRNN", "rnn_a", simple_rnn_fields(7, "relu", true)),
       k2_layer("SimpleRNN", "rnn_b", simple_rnn_fields(3, "tanh", false))});
  const Tensor table = test::random_tensor({11, 5}, 1);
  const Tensor ka = test::random_tensor({5, 7}, 2, -0.6f, 0.6f),
               ra = test::random_tensor({7, 7}, 3, -0.4f, 0.4f), ba = test::random_tensor({7}, 4);
  const Tensor kb = test::random_tensor({7, 3}, 5, -0.6f, 0.6f),
               rb = test::random_tensor({3, 3}, 6, -0.5f, 0.5f), bb = test::random_tensor({3}, 7);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config, {"emb", "rnn_a", "rnn_b"},
      {{"emb", {{"embeddings:0", table}}},
       {"rnn_a", {{"kernel:0", ka}, {"recurrent_kernel:0", ra}, {"bias:0", ba}}},
       {"rnn_b", {{"kernel:0", kb}, {"recurrent_kernel:0", rb}, {"bias:0", bb}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("{name: rnn_a, op: simple_rnn, input: emb, units: 7, activation: relu, "
                  "return_sequences: true}") != std::string::npos);
  CHECK(yaml.find("{name: rnn_b, op: simple_rnn, input: rnn_a, units: 3}") != std::string::npos);

  // right-padded rows, a row with holes, an all-padded row; ids fed as floats (as Keras is)
  const int64_t B = 4, T = 9;
  const std::vector<int> ids = {3, 1, 4, 1, 5, 9, 2, 6, 5,  //
                                3, 5, 8, 0, 0, 0, 0, 0, 0,  //
                                0, 7, 0, 2, 8, 0, 0, 1, 8,  //
                                0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::vector<double> x, id_values;
  std::vector<uint8_t> mask;
  for (int id : ids) {
    id_values.push_back(id);
    mask.push_back(id != 0);
    for (int64_t f = 0; f < 5; ++f) x.push_back(table.data<float>()[id * 5 + f]);
  }
  const std::vector<double> ha = naive_simple_rnn(x, B, T, 5, ka, ra, &ba, "relu", true, mask);
  const std::vector<double> hb = naive_simple_rnn(ha, B, T, 7, kb, rb, &bb, "tanh", false, mask);
  check_imported(m, {{"emb_input", tensor_of({B, T}, id_values)}},
                 {{"emb", tensor_of({B, T, 5}, x)},
                  {"rnn_a", tensor_of({B, T, 7}, ha)},
                  {"rnn_b", tensor_of({B, 3}, hb)}});
}

TEST_CASE("Keras 1 .h5: SimpleRNN with output_dim, init, inner_init and W, U, b") {
  test::NamedTempDir dir("fg_keras_simple_rnn", "k1");
  const std::string config =
      R"({"class_name": "Sequential", "config": [{"class_name": "SimpleRNN", "config": {"name": "simplernn_1", "trainable": true, "batch_input_shape": [null, 6, 4], "input_dtype": "float32", "output_dim": 5, "init": "glorot_uniform", "inner_init": "orthogonal", "activation": "sigmoid", "W_regularizer": null, "U_regularizer": null, "b_regularizer": null, "dropout_W": 0.0, "dropout_U": 0.0, "return_sequences": true, "go_backwards": false, "stateful": false, "unroll": false, "consume_less": "cpu", "input_dim": 4, "input_length": 6}}]})";
  const Tensor W = test::random_tensor({4, 5}, 11),
               U = test::random_tensor({5, 5}, 12, -0.5f, 0.5f), b = test::random_tensor({5}, 13);
  const std::string path = dir.path + "/k1.h5";
  test::write_legacy_model(
      path, config, {"simplernn_1"},
      {{"simplernn_1", {{"simplernn_1_W", W}, {"simplernn_1_U", U}, {"simplernn_1_b", b}}}},
      "1.2.2");
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("op: simple_rnn") != std::string::npos);
  CHECK(yaml.find("units: 5") != std::string::npos);
  CHECK(yaml.find("activation: sigmoid") != std::string::npos);
  const Tensor x = test::random_tensor({3, 6, 4}, 14);
  check_imported(
      m, {{"simplernn_1_input", x}},
      {{"simplernn_1", tensor_of({3, 6, 5}, naive_simple_rnn(test::to_doubles(x), 3, 6, 4, W, U, &b,
                                                             "sigmoid", true))}});
}

TEST_CASE(
    "Keras .h5: SimpleRNN stateful, return_state and bad weights are errors; go_backwards "
    "imports") {
  test::NamedTempDir dir("fg_keras_simple_rnn", "errors");
  const Tensor k = test::random_tensor({4, 5}, 1), r = test::random_tensor({5, 5}, 2),
               b = test::random_tensor({5}, 3);
  auto write = [&](const std::string& fields, const test::LayerWeights& w) {
    const std::string path = dir.path + "/e.h5";
    test::write_legacy_model(
        path,
        k2_sequential({k2_layer("SimpleRNN", "rnn",
                                R"("batch_input_shape": [null, 6, 4], "units": 5, )" + fields)}),
        {"rnn"}, {{"rnn", w}});
    return path;
  };
  const test::LayerWeights good = {{"kernel:0", k}, {"recurrent_kernel:0", r}, {"bias:0", b}};
  for (const char* key : {"stateful", "return_state"}) {
    CAPTURE(key);
    const std::string msg = import_error(write(fmt::format(R"("{}": true)", key), good));
    CHECK(msg.find(key) != std::string::npos);
    CHECK(msg.find("rnn") != std::string::npos);
  }
  CHECK_NOTHROW(import_keras_model(write(R"("unroll": true)", good)));  // the same math
  {
    // go_backwards: the steps last to first (a reverse node before the recurrence)
    const ImportedModel m = import_keras_model(write(R"("go_backwards": true)", good));
    const Tensor x = test::random_tensor({3, 6, 4}, 6);
    const std::vector<double> xd = test::to_doubles(x);
    std::vector<double> reversed(xd.size());
    for (int64_t s = 0; s < 3; ++s)
      for (int64_t t = 0; t < 6; ++t)
        for (int64_t f = 0; f < 4; ++f)
          reversed[(s * 6 + t) * 4 + f] = xd[(s * 6 + (5 - t)) * 4 + f];
    check_imported(
        m, {{"rnn_input", x}},
        {{"rnn", tensor_of({3, 5}, naive_simple_rnn(reversed, 3, 6, 4, k, r, &b, "tanh", false))}});
  }
  // two arrays for a layer with a bias; a kernel of the wrong shape
  std::string msg = import_error(write(R"("use_bias": true)", {{"kernel:0", k}, {"bias:0", b}}));
  CHECK(msg.find("rnn") != std::string::npos);
  CHECK(msg.find("holds 2 weight arrays for this layer, expected 3") != std::string::npos);
  msg = import_error(write(
      R"("use_bias": true)",
      {{"kernel:0", test::random_tensor({4, 6}, 4)}, {"recurrent_kernel:0", r}, {"bias:0", b}}));
  CHECK(msg.find("kernel") != std::string::npos);
  CHECK(msg.find("(4, 6)") != std::string::npos);
  // use_bias false: two arrays
  const std::string path =
      write(R"("use_bias": false)", {{"kernel:0", k}, {"recurrent_kernel:0", r}});
  const ImportedModel m = import_keras_model(path);
  CHECK(m.weights.find("rnn.bias") == nullptr);
  const Tensor x = test::random_tensor({2, 6, 4}, 5);
  check_imported(m, {{"rnn_input", x}},
                 {{"rnn", tensor_of({2, 5}, naive_simple_rnn(test::to_doubles(x), 2, 6, 4, k, r,
                                                             nullptr, "tanh", false))}});
}

TEST_CASE(".keras: two SimpleRNN layers, weights under simple_rnn[_1]/cell/vars") {
  test::NamedTempDir dir("fg_keras_simple_rnn", "k3");
  auto layer = [](const std::string& cls, const std::string& name, const std::string& extra) {
    return fmt::format(
        R"({{"module": "keras.layers", "class_name": "{}", "config": {{"name": "{}", "trainable": true, "dtype": {{"module": "keras", "class_name": "DTypePolicy", "config": {{"name": "float32"}}}}, {}}}, "registered_name": null}})",
        cls, name, extra);
  };
  const std::string config =
      R"({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "layers": [)" +
      layer("InputLayer", "x", R"("batch_shape": [null, 13, 5], "sparse": false)") + ", " +
      layer("SimpleRNN", "first", simple_rnn_fields(127, "tanh", true, R"("seed": null, )")) +
      ", " + layer("SimpleRNN", "second", simple_rnn_fields(7, "linear", false)) + "]}}";
  const Tensor k1 = test::random_tensor({5, 127}, 21, -0.5f, 0.5f),
               r1 = test::random_tensor({127, 127}, 22, -0.08f, 0.08f),
               b1 = test::random_tensor({127}, 23);
  const Tensor k2 = test::random_tensor({127, 7}, 24, -0.1f, 0.1f),
               r2 = test::random_tensor({7, 7}, 25, -0.3f, 0.3f), b2 = test::random_tensor({7}, 26);
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(h5,
                         {{"layers/simple_rnn/cell/vars/0", k1},
                          {"layers/simple_rnn/cell/vars/1", r1},
                          {"layers/simple_rnn/cell/vars/2", b1},
                          {"layers/simple_rnn_1/cell/vars/0", k2},
                          {"layers/simple_rnn_1/cell/vars/1", r2},
                          {"layers/simple_rnn_1/cell/vars/2", b2}},
                         {"vars", "layers/simple_rnn/vars", "layers/simple_rnn_1/vars"});
  test::write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("{name: first, op: simple_rnn, input: x, units: 127, return_sequences: true}") !=
        std::string::npos);
  CHECK(yaml.find("{name: second, op: simple_rnn, input: first, units: 7, activation: linear}") !=
        std::string::npos);
  const Tensor x = test::random_tensor({7, 13, 5}, 27);
  const std::vector<double> h1 =
      naive_simple_rnn(test::to_doubles(x), 7, 13, 5, k1, r1, &b1, "tanh", true);
  const std::vector<double> h2 = naive_simple_rnn(h1, 7, 13, 127, k2, r2, &b2, "linear", false);
  check_imported(m, {{"x", x}},
                 {{"first", tensor_of({7, 13, 127}, h1)}, {"second", tensor_of({7, 7}, h2)}});
}

namespace {

// A TF.js layers model: model.json (the converter's topology {keras_version, backend,
// model_config}) and one float32 shard holding `weights` back to back in manifest order.
std::string write_tfjs(const std::string& dir, const nlohmann::json& model_config,
                       const std::vector<std::pair<std::string, Tensor>>& weights) {
  std::string bytes;
  nlohmann::json manifest_weights = nlohmann::json::array();
  for (const auto& [name, t] : weights) {
    manifest_weights.push_back({{"name", name}, {"shape", t.shape()}, {"dtype", "float32"}});
    bytes.append(reinterpret_cast<const char*>(t.data<float>()), t.size() * sizeof(float));
  }
  std::ofstream(dir + "/group1-shard1of1.bin", std::ios::binary) << bytes;
  const nlohmann::json model = {
      {"format", "layers-model"},
      {"generatedBy", "keras v2.13.1"},
      {"convertedBy", "TensorFlow.js Converter v4.10.0"},
      {"modelTopology",
       {{"keras_version", "2.13.1"}, {"backend", "tensorflow"}, {"model_config", model_config}}},
      {"weightsManifest", {{{"paths", {"group1-shard1of1.bin"}}, {"weights", manifest_weights}}}}};
  return test::write_text(dir + "/model.json", model.dump());
}

}  // namespace

TEST_CASE("TF.js: SimpleRNN weights '<layer>/[simple_rnn_cell/]kernel' bind and run") {
  test::NamedTempDir dir("fg_keras_simple_rnn", "tfjs");
  const nlohmann::json config = nlohmann::json::parse(
      k2_sequential({k2_layer("SimpleRNN", "simple_rnn",
                              R"("batch_input_shape": [null, 13, 5], "dtype": "float32", )" +
                                  simple_rnn_fields(13, "sigmoid", true))}));
  const Tensor k = test::random_tensor({5, 13}, 31),
               r = test::random_tensor({13, 13}, 32, -0.3f, 0.3f),
               b = test::random_tensor({13}, 33);
  const Tensor x = test::random_tensor({7, 13, 5}, 34);
  const std::vector<double> want =
      naive_simple_rnn(test::to_doubles(x), 7, 13, 5, k, r, &b, "sigmoid", true);
  for (const char* cell : {"simple_rnn_cell/", ""}) {
    CAPTURE(std::string(cell));
    const std::string prefix = std::string("simple_rnn/") + cell;
    const std::string path = write_tfjs(
        dir.path, config,
        {{prefix + "kernel", k}, {prefix + "recurrent_kernel", r}, {prefix + "bias", b}});
    const ImportedModel m = import_keras_model(path);
    CHECK(format_imported_yaml(m).find("op: simple_rnn") != std::string::npos);
    check_imported(m, {{"simple_rnn_input", x}}, {{"simple_rnn", tensor_of({7, 13, 13}, want)}});
  }
}
