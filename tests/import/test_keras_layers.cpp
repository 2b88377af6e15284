// The Keras layers beyond the fixtures' (Conv2D, pooling, global pooling, Embedding, GRU,
// BatchNormalization, merge layers in functional models): legacy `.h5` files and `.keras`
// archives written at test time by the formats' rules (tests/import/keras_writers.hpp) with
// random weights, imported, read back from the written YAML, run, and compared layer by layer
// with the naive references of tests/reference/ (plain loops written from the Keras formulas).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fusiongraph/import.hpp>

#include "engine/npy.hpp"
#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/elementwise_fusion.hpp"
#include "tests/reference/norm_merge.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

using test::check_all_ok;
using test::import_error;
using test::verify_imported;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// A Keras 2 layer of a functional model reading the outputs of `inbound` (nested lists).
std::string k2_layer(const std::string& cls, const std::string& name, const std::string& fields,
                     const std::vector<std::string>& inbound = {}) {
  std::vector<std::string> refs;
  for (const auto& i : inbound) refs.push_back(fmt::format(R"(["{}", 0, 0, {{}}])", i));
  return fmt::format(
      R"({{"name": "{}", "class_name": "{}", "config": {{"name": "{}", "trainable": true{}}}, "inbound_nodes": [{}]}})",
      name, cls, name, fields.empty() ? "" : ", " + fields,
      inbound.empty() ? "" : "[" + join(refs) + "]");
}

std::string k2_input(const std::string& name, const std::string& shape) {
  return k2_layer(
      "InputLayer", name,
      fmt::format(R"("batch_input_shape": [null, {}], "dtype": "float32", "sparse": false)",
                  shape));
}

std::string k2_functional(const std::vector<std::string>& layers,
                          const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs) {
  auto ends = [](const std::vector<std::string>& names) {
    std::vector<std::string> e;
    for (const auto& n : names) e.push_back(fmt::format(R"(["{}", 0, 0])", n));
    return join(e);
  };
  return fmt::format(
      R"({{"class_name": "Model", "config": {{"name": "model_1", "layers": [{}], "input_layers": [{}], "output_layers": [{}]}}}})",
      join(layers), ends(inputs), ends(outputs));
}

// A Keras 2.2+ Sequential config: the layers without inbound nodes.
std::string k2_sequential(const std::vector<std::string>& layers) {
  std::vector<std::string> l;
  for (const auto& s : layers) l.push_back(s);
  return fmt::format(
      R"({{"class_name": "Sequential", "config": {{"name": "sequential_1", "layers": [{}]}}}})",
      join(l));
}

std::string k2_seq_layer(const std::string& cls, const std::string& name,
                         const std::string& fields) {
  return fmt::format(R"({{"class_name": "{}", "config": {{"name": "{}", "trainable": true, {}}}}})",
                     cls, name, fields);
}

ref::Array array_of(const Tensor& t) {
  ref::Array a;
  a.shape.assign(t.shape().begin(), t.shape().end());
  a.data = test::to_doubles(t);
  return a;
}

std::vector<double> values(const Tensor& t) {
  return test::to_doubles(t);
}

Tensor tensor_of(const std::vector<int64_t>& shape, const std::vector<double>& data) {
  Tensor t(DType::f32, Dims(shape.begin(), shape.end()));
  REQUIRE(static_cast<size_t>(t.size()) == data.size());
  for (size_t i = 0; i < data.size(); ++i) t.mutable_data<float>()[i] = static_cast<float>(data[i]);
  return t;
}
Tensor tensor_of(const ref::Array& a) {
  return tensor_of(a.shape, a.data);
}

// [B, C, S...] <-> [B, S..., C]
ref::Array channels_last(const ref::Array& x) {
  const int64_t B = x.shape[0], C = x.shape[1], S = x.size() / (B * C);
  ref::Array y;
  y.shape = {B};
  y.shape.insert(y.shape.end(), x.shape.begin() + 2, x.shape.end());
  y.shape.push_back(C);
  y.data.resize(x.data.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) y.data[(b * S + s) * C + c] = x.data[(b * C + c) * S + s];
  return y;
}
ref::Array channels_first(const ref::Array& x) {
  const int64_t B = x.shape[0], C = x.shape.back(), S = x.size() / (B * C);
  ref::Array y;
  y.shape = {B, C};
  y.shape.insert(y.shape.end(), x.shape.begin() + 1, x.shape.end() - 1);
  y.data.resize(x.data.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) y.data[(b * C + c) * S + s] = x.data[(b * S + s) * C + c];
  return y;
}

// Keras's model.summary() count per layer, checked against `summary` of the imported graph.
void check_keras_params(const ImportedModel& m, const std::map<std::string, int64_t>& params) {
  const auto graph = compile_graph(load_graph_string(format_imported_yaml(m)), builtin_ops());
  const Summary s = summarize(graph, {});
  int64_t total = 0, seen = 0;
  for (const auto& [node, n] : params) total += n;
  for (const SummaryRow& row : s.rows)
    if (params.count(row.node)) {
      CAPTURE(row.node);
      CHECK(row.params == params.at(row.node));
      ++seen;
    }
  CHECK(seen == static_cast<int64_t>(params.size()));
  CHECK(s.total_params == total);
}

}  // namespace

TEST_CASE("Keras import: Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D") {
  test::NamedTempDir dir("fg_keras_layers", "conv2d");
  const std::string config = k2_sequential(
      {k2_seq_layer(
           "Conv2D", "conv",
           R"("batch_input_shape": [null, 7, 9, 3], "dtype": "float32", "filters": 5, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "relu", "use_bias": true)"),
       k2_seq_layer(
           "MaxPooling2D", "pool",
           R"("pool_size": [2, 2], "padding": "valid", "strides": [2, 2], "data_format": "channels_last")"),
       k2_seq_layer(
           "AveragePooling2D", "avg",
           R"("pool_size": [2, 3], "padding": "same", "strides": [1, 1], "data_format": "channels_last")"),
       k2_seq_layer("GlobalAveragePooling2D", "gap", R"("data_format": "channels_last")")});
  const Tensor kernel = test::random_tensor({3, 2, 3, 5}, 11), bias = test::random_tensor({5}, 12);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, config, {"conv", "pool", "avg", "gap"},
                           {{"conv", {{"kernel:0", kernel}, {"bias:0", bias}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("conv_input: {shape: [7, 9, 3]}") != std::string::npos);
  CHECK(yaml.find("op: conv2d") != std::string::npos);
  CHECK(yaml.find("kernel_size: [3, 2]") != std::string::npos);
  CHECK(yaml.find("strides: [2, 1]") != std::string::npos);
  CHECK(yaml.find("{name: pool, op: max_pooling2d, input: conv}") != std::string::npos);
  CHECK(yaml.find("pool_size: [2, 3], strides: 1, padding: same") != std::string::npos);
  CHECK(yaml.find("op: global_average_pooling2d") != std::string::npos);

  const Tensor x = test::random_tensor({2, 7, 9, 3}, 13);
  const ref::Array conv =
      ref::conv2d(array_of(x), array_of(kernel), values(bias), 2, 1, 1, 1, "same", "relu");
  const ref::Array pool = ref::pool2d(conv, true, 2, 2, 2, 2, "valid");
  const ref::Array avg = ref::pool2d(pool, false, 2, 3, 1, 1, "same");
  const ref::Array gap = ref::global_pool(avg, false);
  CHECK(conv.shape == std::vector<int64_t>{2, 4, 9, 5});
  const VerifyReport r = verify_imported(m, {{"conv_input", x}},
                                         {{"conv", tensor_of(conv)},
                                          {"pool", tensor_of(pool)},
                                          {"avg", tensor_of(avg)},
                                          {"gap", tensor_of(gap)}});
  check_all_ok(r, 4);
}

TEST_CASE("Keras import: channels_first Conv2D and pooling keep the model's input layout") {
  test::NamedTempDir dir("fg_keras_layers", "cf");
  const std::string config = k2_functional(
      {k2_input("x", "3, 7, 9"),
       k2_layer(
           "Conv2D", "conv",
           R"("filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_first", "dilation_rate": [2, 1], "activation": "tanh", "use_bias": true)",
           {"x"}),
       k2_layer(
           "AveragePooling2D", "pool",
           R"("pool_size": [1, 2], "padding": "valid", "strides": [1, 2], "data_format": "channels_first")",
           {"conv"}),
       k2_layer("GlobalMaxPooling2D", "gmp", R"("data_format": "channels_first")", {"pool"})},
      {"x"}, {"gmp"});
  const Tensor kernel = test::random_tensor({3, 3, 3, 4}, 21), bias = test::random_tensor({4}, 22);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, config, {"x", "conv", "pool", "gmp"},
                           {{"conv", {{"kernel:0", kernel}, {"bias:0", bias}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("x: {shape: [3, 7, 9]}") != std::string::npos);
  CHECK(yaml.find("{name: conv_to_channels_last, op: permute, input: x, dims: [2, 3, 1]}") !=
        std::string::npos);
  CHECK(yaml.find("{name: conv, op: permute, input: conv_channels_last, dims: [3, 1, 2]}") !=
        std::string::npos);
  CHECK(yaml.find("dilation_rate: [2, 1]") != std::string::npos);

  const Tensor x = test::random_tensor({2, 3, 7, 9}, 23);
  const ref::Array conv = ref::conv2d(channels_last(array_of(x)), array_of(kernel), values(bias), 1,
                                      1, 2, 1, "valid", "tanh");
  const ref::Array pool = ref::pool2d(conv, false, 1, 2, 1, 2, "valid");
  const ref::Array gmp = ref::global_pool(pool, true);
  CHECK(channels_first(conv).shape == std::vector<int64_t>{2, 4, 3, 7});
  const VerifyReport r = verify_imported(m, {{"x", x}},
                                         {{"conv", tensor_of(channels_first(conv))},
                                          {"pool", tensor_of(channels_first(pool))},
                                          {"gmp", tensor_of(gmp)}});
  check_all_ok(r, 3);
}

TEST_CASE("Keras import: 1D pooling, Keras 2 and Keras 1 spellings") {
  test::NamedTempDir dir("fg_keras_layers", "pool1d");
  const Tensor kernel = test::random_tensor({3, 3, 4}, 31), bias = test::random_tensor({4}, 32);
  const Tensor x = test::random_tensor({3, 13, 3}, 33);
  const ref::Array conv =
      ref::conv1d(array_of(x), array_of(kernel), values(bias), 1, 1, "valid", "linear");
  const ref::Array mp = ref::pool1d(conv, true, 3, 2, "same");
  const ref::Array ap = ref::pool1d(mp, false, 2, 2, "valid");
  CHECK(ap.shape == std::vector<int64_t>{3, 3, 4});
  {  // Keras 2.3
    const std::string config = k2_sequential(
        {k2_seq_layer(
             "Conv1D", "conv",
             R"("batch_input_shape": [null, 13, 3], "filters": 4, "kernel_size": [3], "strides": [1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1], "activation": "linear", "use_bias": true)"),
         k2_seq_layer(
             "MaxPooling1D", "mp",
             R"("pool_size": [3], "padding": "same", "strides": [2], "data_format": "channels_last")"),
         k2_seq_layer(
             "AveragePooling1D", "ap",
             R"("pool_size": [2], "padding": "valid", "strides": null, "data_format": "channels_last")"),
         k2_seq_layer("GlobalMaxPooling1D", "gmp", R"("data_format": "channels_last")")});
    const std::string path = dir.path + "/k2.h5";
    test::write_legacy_model(path, config, {"conv", "mp", "ap", "gmp"},
                             {{"conv", {{"kernel:0", kernel}, {"bias:0", bias}}}});
    const ImportedModel m = import_keras_model(path);
    const std::string yaml = format_imported_yaml(m);
    CAPTURE(yaml);
    CHECK(yaml.find("{name: mp, op: max_pooling1d, input: conv, pool_size: 3, strides: 2, "
                    "padding: same}") != std::string::npos);
    CHECK(yaml.find("{name: ap, op: average_pooling1d, input: mp}") != std::string::npos);
    const VerifyReport r = verify_imported(m, {{"conv_input", x}},
                                           {{"conv", tensor_of(conv)},
                                            {"mp", tensor_of(mp)},
                                            {"ap", tensor_of(ap)},
                                            {"gmp", tensor_of(ref::global_pool(ap, true))}});
    check_all_ok(r, 4);
  }
  {  // Keras 1.2: the Sequential config is the list itself; pool_length, stride, border_mode
    const std::string config =
        R"({"class_name": "Sequential", "config": [)" +
        join(
            {k2_seq_layer(
                 "Conv1D", "conv",
                 R"("batch_input_shape": [null, 13, 3], "filters": 4, "kernel_size": 3, "strides": 1, "padding": "valid", "dilation_rate": 1, "activation": "linear", "use_bias": true)"),
             k2_seq_layer("MaxPooling1D", "mp",
                          R"("pool_length": 3, "stride": 2, "border_mode": "same")"),
             k2_seq_layer("AveragePooling1D", "ap",
                          R"("pool_length": 2, "stride": null, "border_mode": "valid")"),
             k2_seq_layer("GlobalAveragePooling1D", "gap", R"("trainable": true)")}) +
        "]}";
    const std::string path = dir.path + "/k1.h5";
    test::write_legacy_model(path, config, {"conv", "mp", "ap", "gap"},
                             {{"conv", {{"kernel:0", kernel}, {"bias:0", bias}}}}, "1.2.2");
    const ImportedModel m = import_keras_model(path);
    const VerifyReport r = verify_imported(m, {{"conv_input", x}},
                                           {{"mp", tensor_of(mp)},
                                            {"ap", tensor_of(ap)},
                                            {"gap", tensor_of(ref::global_pool(ap, false))}});
    check_all_ok(r, 3);
  }
}

TEST_CASE("Keras import: Embedding and GRU (reset_after false and true)") {
  test::NamedTempDir dir("fg_keras_layers", "gru");
  const std::string config = k2_sequential(
      {k2_seq_layer(
           "Embedding", "emb",
           R"("batch_input_shape": [null, 7], "dtype": "float32", "input_dim": 11, "output_dim": 6, "mask_zero": false, "input_length": 7)"),
       k2_seq_layer(
           "GRU", "gru_a",
           R"("units": 5, "activation": "tanh", "recurrent_activation": "hard_sigmoid", "use_bias": true, "return_sequences": true, "go_backwards": false, "stateful": false, "dropout": 0.0, "recurrent_dropout": 0.0, "reset_after": false)"),
       k2_seq_layer(
           "GRU", "gru_b",
           R"("units": 3, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true, "return_sequences": false, "reset_after": true)")});
  const Tensor table = test::random_tensor({11, 6}, 41);
  const Tensor ka = test::random_tensor({6, 15}, 42), ra = test::random_tensor({5, 15}, 43),
               ba = test::random_tensor({15}, 44);
  const Tensor kb = test::random_tensor({5, 9}, 45), rb = test::random_tensor({3, 9}, 46),
               bb = test::random_tensor({2, 9}, 47);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config, {"emb", "gru_a", "gru_b"},
      {{"emb", {{"embeddings:0", table}}},
       {"gru_a", {{"kernel:0", ka}, {"recurrent_kernel:0", ra}, {"bias:0", ba}}},
       {"gru_b", {{"kernel:0", kb}, {"recurrent_kernel:0", rb}, {"bias:0", bb}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("emb_input: {shape: [7], dtype: int32}") != std::string::npos);
  CHECK(yaml.find("reset_after: false") != std::string::npos);
  CHECK(yaml.find("recurrent_activation: hard_sigmoid") != std::string::npos);
  CHECK(yaml.find("hard_sigmoid_keras3") == std::string::npos);  // Keras 2's formula
  CHECK(m.weights.find("gru_b.bias")->shape() == Dims{2, 9});
  // Keras: Embedding 11 * 6; GRU 3 * (F*u + u*u + u), with reset_after one more u per gate
  check_keras_params(
      m, {{"emb", 66}, {"gru_a", 3 * (6 * 5 + 5 * 5 + 5)}, {"gru_b", 3 * (5 * 3 + 3 * 3 + 2 * 3)}});

  // ids 0..10 as Keras is fed them: floats
  const int batch = 3, steps = 7;
  std::vector<int> ids;
  std::vector<double> ids_as_float;
  for (int i = 0; i < batch * steps; ++i) {
    ids.push_back((i * 7 + 3) % 11);
    ids_as_float.push_back(ids.back());
  }
  const std::vector<double> e = ref::embedding(ids, table.data<float>(), 6);
  const std::vector<float> ef(e.begin(), e.end());
  ref::RnnArgs a;
  a.lstm = false;
  a.batch = batch, a.steps = steps, a.features = 6, a.units = 5;
  a.return_sequences = true, a.reset_after = false, a.recurrent_activation = "hard_sigmoid";
  a.x = ef.data(), a.kernel = ka.data<float>(), a.recurrent = ra.data<float>();
  a.bias = ba.data<float>();
  const std::vector<double> ha = ref::rnn(a);
  const std::vector<float> haf(ha.begin(), ha.end());
  ref::RnnArgs b;
  b.lstm = false;
  b.batch = batch, b.steps = steps, b.features = 5, b.units = 3;
  b.x = haf.data(), b.kernel = kb.data<float>(), b.recurrent = rb.data<float>();
  b.bias = bb.data<float>();
  const std::map<std::string, Tensor> reference = {{"emb", tensor_of({batch, steps, 6}, e)},
                                                   {"gru_a", tensor_of({batch, steps, 5}, ha)},
                                                   {"gru_b", tensor_of({batch, 3}, ref::rnn(b))}};
  const Tensor ids_tensor = tensor_of({batch, steps}, ids_as_float);
  check_all_ok(verify_imported(m, {{"emb_input", ids_tensor}}, reference), 3);

  // the round trip on the command line, with the ids in a float32 .npy as Keras is fed them
  const std::string refdir = dir.path + "/reference";
  std::filesystem::create_directories(refdir);
  write_npy(refdir + "/emb_input.npy", ids_tensor);
  for (const auto& [name, t] : reference) write_npy(refdir + "/" + name + ".npy", t);
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  auto cli = test::run_cli(fmt::format("import {} --graph {} --weights {}", path, g, w));
  CHECK(cli.code == 0);
  cli = test::run_cli(fmt::format("verify {} --weights {} --reference {}", g, w, refdir));
  CAPTURE(cli.out);
  CHECK(cli.code == 0);
  CHECK(cli.out.find("verified: 3 nodes") != std::string::npos);
  // a fractional id is not an id
  Tensor bad = tensor_of({batch, steps}, ids_as_float);
  bad.mutable_data<float>()[4] = 2.5f;
  write_npy(refdir + "/emb_input.npy", bad);
  cli = test::run_cli(fmt::format("verify {} --weights {} --reference {}", g, w, refdir));
  CHECK(cli.code == 1);
  CHECK(cli.out.find("holds 2.5 at element 4, which is not an integer id") != std::string::npos);
}

TEST_CASE("Keras import: Embedding(mask_zero) before an LSTM skips the padded steps") {
  test::NamedTempDir dir("fg_keras_layers", "mask");
  const std::string config = k2_sequential(
      {k2_seq_layer(
           "Embedding", "emb",
           R"("batch_input_shape": [null, 6], "input_dim": 9, "output_dim": 4, "mask_zero": true)"),
       k2_seq_layer(
           "LSTM", "lstm",
           R"("units": 7, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true, "return_sequences": false)")});
  const Tensor table = test::random_tensor({9, 4}, 151), kernel = test::random_tensor({4, 28}, 152),
               recurrent = test::random_tensor({7, 28}, 153), bias = test::random_tensor({28}, 154);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config, {"emb", "lstm"},
      {{"emb", {{"embeddings:0", table}}},
       {"lstm", {{"kernel:0", kernel}, {"recurrent_kernel:0", recurrent}, {"bias:0", bias}}}});
  const ImportedModel m = import_keras_model(path);
  CHECK(format_imported_yaml(m).find("mask_zero: true") != std::string::npos);
  // rows: right-padded, with a hole, all padding
  const std::vector<int> ids = {3, 8, 1, 0, 0, 0, 5, 0, 2, 2, 0, 7, 0, 0, 0, 0, 0, 0};
  std::vector<double> ids_as_float(ids.begin(), ids.end());
  std::vector<uint8_t> mask;
  for (int id : ids) mask.push_back(id != 0);
  const std::vector<double> e = ref::embedding(ids, table.data<float>(), 4);
  const std::vector<float> ef(e.begin(), e.end());
  ref::RnnArgs a;
  a.batch = 3, a.steps = 6, a.features = 4, a.units = 7;
  a.x = ef.data(), a.kernel = kernel.data<float>(), a.recurrent = recurrent.data<float>();
  a.bias = bias.data<float>(), a.mask = mask.data();
  const std::vector<double> h = ref::rnn(a);
  for (int j = 0; j < 7; ++j)
    CHECK(h[2 * 7 + j] == 0.0);  // the all-padding row keeps the zero state
  check_all_ok(verify_imported(m, {{"emb_input", tensor_of({3, 6}, ids_as_float)}},
                               {{"emb", tensor_of({3, 6, 4}, e)}, {"lstm", tensor_of({3, 7}, h)}}),
               2);
}

TEST_CASE("Keras import: a Keras 1 GRU's nine per-gate arrays") {
  test::NamedTempDir dir("fg_keras_layers", "gru1");
  const std::string config =
      R"({"class_name": "Sequential", "config": [)" +
      k2_seq_layer(
          "GRU", "gru_1",
          R"("batch_input_shape": [null, 5, 3], "output_dim": 4, "activation": "tanh", "inner_activation": "hard_sigmoid", "return_sequences": false, "go_backwards": false, "stateful": false, "dropout_W": 0.0, "dropout_U": 0.0)") +
      "]}";
  // W_z U_z b_z W_r U_r b_r W_h U_h b_h
  std::vector<Tensor> parts;
  test::LayerWeights w;
  const char* names[3] = {"z", "r", "h"};
  for (int g = 0; g < 3; ++g) {
    parts.push_back(test::random_tensor({3, 4}, 51 + g));
    parts.push_back(test::random_tensor({4, 4}, 61 + g));
    parts.push_back(test::random_tensor({4}, 71 + g));
    w.push_back({fmt::format("gru_1_W_{}", names[g]), parts[g * 3]});
    w.push_back({fmt::format("gru_1_U_{}", names[g]), parts[g * 3 + 1]});
    w.push_back({fmt::format("gru_1_b_{}", names[g]), parts[g * 3 + 2]});
  }
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, config, {"gru_1"}, {{"gru_1", w}}, "1.2.2");
  const ImportedModel m = import_keras_model(path);
  CHECK(format_imported_yaml(m).find("Keras 1 weights") != std::string::npos);
  // the gates side by side: [rows, 3 * 4] with z, r, h in Keras 2's order
  auto side_by_side = [&](int part, int64_t rows) {
    std::vector<float> out(static_cast<size_t>(rows * 12));
    for (int g = 0; g < 3; ++g)
      for (int64_t r = 0; r < rows; ++r)
        for (int j = 0; j < 4; ++j)
          out[r * 12 + g * 4 + j] = parts[g * 3 + part].data<float>()[r * 4 + j];
    return out;
  };
  const auto kernel = side_by_side(0, 3), recurrent = side_by_side(1, 4), bias = side_by_side(2, 1);
  const Tensor x = test::random_tensor({2, 5, 3}, 81);
  ref::RnnArgs a;
  a.lstm = false;
  a.batch = 2, a.steps = 5, a.features = 3, a.units = 4;
  a.reset_after = false, a.recurrent_activation = "hard_sigmoid";
  a.x = x.data<float>(), a.kernel = kernel.data(), a.recurrent = recurrent.data(),
  a.bias = bias.data();
  const VerifyReport r =
      verify_imported(m, {{"gru_1_input", x}}, {{"gru_1", tensor_of({2, 4}, ref::rnn(a))}});
  check_all_ok(r, 1);
}

TEST_CASE("Keras import: a Keras 3 GRU's hard_sigmoid is relu6(x + 3) / 6") {
  test::NamedTempDir dir("fg_keras_layers", "hs3");
  const std::string config =
      R"({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 5, 3], "dtype": "float32", "sparse": false, "name": "x"}, "registered_name": null}, {"module": "keras.layers", "class_name": "GRU", "config": {"name": "rnn", "trainable": true, "units": 4, "activation": "tanh", "recurrent_activation": "hard_sigmoid", "use_bias": true, "return_sequences": false, "go_backwards": false, "stateful": false, "reset_after": true}, "registered_name": null}]}, "registered_name": null})";
  // large enough weights that the gates leave [-2.5, 2.5], where the two formulas differ most
  const Tensor kernel = test::random_tensor({3, 12}, 111, -2.f, 2.f),
               recurrent = test::random_tensor({4, 12}, 112, -2.f, 2.f),
               bias = test::random_tensor({2, 12}, 113);
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(h5,
                         {{"layers/gru/cell/vars/0", kernel},
                          {"layers/gru/cell/vars/1", recurrent},
                          {"layers/gru/cell/vars/2", bias}},
                         {"vars", "layers/gru/vars"});
  test::write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("recurrent_activation: hard_sigmoid_keras3") != std::string::npos);
  CHECK(yaml.find("# Keras 3's hard_sigmoid is relu6(x + 3) / 6") != std::string::npos);
  const Tensor x = test::random_tensor({3, 5, 3}, 114, -2.f, 2.f);
  ref::RnnArgs a;
  a.lstm = false;
  a.batch = 3, a.steps = 5, a.features = 3, a.units = 4;
  a.recurrent_activation = "hard_sigmoid_keras3";
  a.x = x.data<float>(), a.kernel = kernel.data<float>(), a.recurrent = recurrent.data<float>();
  a.bias = bias.data<float>();
  check_all_ok(verify_imported(m, {{"x", x}}, {{"rnn", tensor_of({3, 4}, ref::rnn(a))}}), 1);
  // Keras 2's formula gives other numbers: the check above can tell them apart
  a.recurrent_activation = "hard_sigmoid";
  CHECK(!verify_imported(m, {{"x", x}}, {{"rnn", tensor_of({3, 4}, ref::rnn(a))}}).ok());
}

namespace {

// A Keras 3 Sequential config (InputLayer first, DTypePolicy dicts).
std::string k3_sequential(const std::string& input_shape, const std::string& input_dtype,
                          const std::vector<std::pair<std::string, std::string>>& layers) {
  std::vector<std::string> items = {fmt::format(
      R"({{"module": "keras.layers", "class_name": "InputLayer", "config": {{"batch_shape": [null, {}], "dtype": "{}", "sparse": false, "name": "x"}}, "registered_name": null}})",
      input_shape, input_dtype)};
  for (const auto& [cls, fields] : layers)
    items.push_back(fmt::format(
        R"({{"module": "keras.layers", "class_name": "{}", "config": {{"trainable": true, "dtype": {{"module": "keras", "class_name": "DTypePolicy", "config": {{"name": "float32"}}}}, {}}}, "registered_name": null}})",
        cls, fields));
  return fmt::format(
      R"({{"module": "keras", "class_name": "Sequential", "config": {{"name": "sequential", "trainable": true, "layers": [{}]}}, "registered_name": null}})",
      join(items));
}

}  // namespace

TEST_CASE("Keras import: a Keras 3 .keras Conv2D, BatchNormalization, MaxPooling2D stack") {
  test::NamedTempDir dir("fg_keras_layers", "k3conv");
  const std::string config = k3_sequential(
      "6, 5, 2", "float32",
      {{"Conv2D",
        R"("name": "first", "filters": 3, "kernel_size": [2, 2], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true)"},
       {"BatchNormalization",
        R"("name": "bn", "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": true, "synchronized": false)"},
       {"Conv2D",
        R"("name": "second", "filters": 4, "kernel_size": [1, 3], "strides": [1, 1], "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "linear", "use_bias": false)"},
       {"MaxPooling2D",
        R"("name": "mp", "pool_size": [2, 2], "padding": "valid", "strides": [2, 2], "data_format": "channels_last")"}});
  const Tensor k1 = test::random_tensor({2, 2, 2, 3}, 121), b1 = test::random_tensor({3}, 122);
  const Tensor gamma = test::random_tensor({3}, 123), beta = test::random_tensor({3}, 124),
               mean = test::random_tensor({3}, 125), var = test::random_tensor({3}, 126, 0.5f, 2.f);
  const Tensor k2 = test::random_tensor({1, 3, 3, 4}, 127);
  const std::string h5 = dir.path + "/model.weights.h5";
  // by class in model order: conv2d, batch_normalization, conv2d_1, max_pooling2d
  test::write_weights_h5(h5,
                         {{"layers/conv2d/vars/0", k1},
                          {"layers/conv2d/vars/1", b1},
                          {"layers/batch_normalization/vars/0", gamma},
                          {"layers/batch_normalization/vars/1", beta},
                          {"layers/batch_normalization/vars/2", mean},
                          {"layers/batch_normalization/vars/3", var},
                          {"layers/conv2d_1/vars/0", k2}},
                         {"vars", "layers/max_pooling2d/vars"});
  test::write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  const Tensor x = test::random_tensor({2, 6, 5, 2}, 128);
  const ref::Array c1 =
      ref::conv2d(array_of(x), array_of(k1), values(b1), 1, 1, 1, 1, "valid", "relu");
  const ref::Array bn{c1.shape, ref::batch_norm(c1.data, c1.shape, 3, values(gamma), values(beta),
                                                values(mean), values(var), 1e-3)};
  const ref::Array c2 = ref::conv2d(bn, array_of(k2), {}, 1, 1, 1, 1, "same", "linear");
  const ref::Array mp = ref::pool2d(c2, true, 2, 2, 2, 2, "valid");
  check_all_ok(verify_imported(m, {{"x", x}},
                               {{"first", tensor_of(c1)},
                                {"bn", tensor_of(bn)},
                                {"second", tensor_of(c2)},
                                {"mp", tensor_of(mp)}}),
               4);
}

TEST_CASE("Keras import: a Keras 3 .keras Embedding on an int32 input") {
  test::NamedTempDir dir("fg_keras_layers", "k3emb");
  const std::string config = k3_sequential(
      "5", "int32",
      {{"Embedding", R"("name": "emb", "input_dim": 13, "output_dim": 7, "mask_zero": false)"},
       {"GlobalAveragePooling1D",
        R"("name": "gap", "data_format": "channels_last", "keepdims": false)"}});
  const Tensor table = test::random_tensor({13, 7}, 131);
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(h5, {{"layers/embedding/vars/0", table}},
                         {"vars", "layers/global_average_pooling1d/vars"});
  test::write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  CHECK(format_imported_yaml(m).find("x: {shape: [5], dtype: int32}") != std::string::npos);
  const std::vector<int> ids = {12, 0, 3, 3, 7, 1, 2, 11, 5, 9};
  const std::vector<double> e = ref::embedding(ids, table.data<float>(), 7);
  const ref::Array gap = ref::global_pool(ref::Array{{2, 5, 7}, e}, false);
  Tensor id_tensor(DType::i32, {2, 5});
  std::copy(ids.begin(), ids.end(), id_tensor.mutable_data<int32_t>());
  check_all_ok(verify_imported(m, {{"x", id_tensor}},
                               {{"emb", tensor_of({2, 5, 7}, e)}, {"gap", tensor_of(gap)}}),
               2);
}

TEST_CASE(
    "Keras import: BatchNormalization on axis 1 and on the last axis (a one-element list), with "
    "and without scale") {
  test::NamedTempDir dir("fg_keras_layers", "bn");
  const std::string config = k2_sequential(
      {k2_seq_layer(
           "BatchNormalization", "bn1",
           R"("batch_input_shape": [null, 5, 7], "axis": 1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": false)"),
       k2_seq_layer(
           "BatchNormalization", "bn2",
           R"("axis": [2], "momentum": 0.9, "epsilon": 0.01, "center": true, "scale": true)")});
  const Tensor beta1 = test::random_tensor({5}, 91), mean1 = test::random_tensor({5}, 92),
               var1 = test::random_tensor({5}, 93, 0.5f, 2.f);
  const Tensor gamma2 = test::random_tensor({7}, 94), beta2 = test::random_tensor({7}, 95),
               mean2 = test::random_tensor({7}, 96), var2 = test::random_tensor({7}, 97, 0.1f, 3.f);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config, {"bn1", "bn2"},
      {{"bn1", {{"beta:0", beta1}, {"moving_mean:0", mean1}, {"moving_variance:0", var1}}},
       {"bn2",
        {{"gamma:0", gamma2},
         {"beta:0", beta2},
         {"moving_mean:0", mean2},
         {"moving_variance:0", var2}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(
      yaml.find("{name: bn1, op: batch_normalization, input: bn1_input, axis: 1, scale: false}") !=
      std::string::npos);
  CHECK(yaml.find("axis: 2") != std::string::npos);
  // Keras counts the moving statistics too (as non-trainable): 3 * 5 without gamma, 4 * 7
  check_keras_params(m, {{"bn1", 15}, {"bn2", 28}});
  const Tensor x = test::random_tensor({3, 5, 7}, 98);
  const std::vector<double> y1 = ref::batch_norm(values(x), {3, 5, 7}, 1, {}, values(beta1),
                                                 values(mean1), values(var1), 1e-3);
  const std::vector<double> y2 = ref::batch_norm(y1, {3, 5, 7}, 2, values(gamma2), values(beta2),
                                                 values(mean2), values(var2), 1e-2);
  const VerifyReport r =
      verify_imported(m, {{"bn1_input", x}},
                      {{"bn1", tensor_of({3, 5, 7}, y1)}, {"bn2", tensor_of({3, 5, 7}, y2)}});
  check_all_ok(r, 2);
}

TEST_CASE("Keras import: LayerNormalization and UpSampling2D (nearest, bilinear, channels_first)") {
  test::NamedTempDir dir("fg_keras_layers", "ln_up");
  // x [4, 6, 3] -> ln over the channels (tf.keras's one-element list) -> up nearest (2, 3) on
  // [4, 6, 3] seen as an image -> ln without center over the last two axes
  const std::string config = k2_functional(
      {k2_input("x", "4, 6, 3"),
       k2_layer("LayerNormalization", "ln",
                R"("axis": [3], "epsilon": 0.001, "center": true, "scale": true)", {"x"}),
       k2_layer("UpSampling2D", "up",
                R"("size": [2, 3], "data_format": "channels_last", "interpolation": "nearest")",
                {"ln"}),
       k2_layer("LayerNormalization", "ln2",
                R"("axis": [2, 3], "epsilon": 0.01, "center": false, "scale": true)", {"up"}),
       k2_layer("UpSampling2D", "upcf",
                R"("size": [3, 2], "data_format": "channels_first", "interpolation": "bilinear")",
                {"ln2"})},
      {"x"}, {"upcf"});
  const Tensor gamma = test::random_tensor({3}, 141), beta = test::random_tensor({3}, 142);
  const Tensor gamma2 = test::random_tensor({18, 3}, 143);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config, {"x", "ln", "up", "ln2", "upcf"},
      {{"ln", {{"gamma:0", gamma}, {"beta:0", beta}}}, {"ln2", {{"gamma:0", gamma2}}}});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("{name: ln2, op: layer_normalization, input: up, axis: [2, 3], center: false, "
                  "epsilon: 0.01}") != std::string::npos);
  CHECK(yaml.find("{name: up, op: upsampling2d, input: ln, size: [2, 3]}") != std::string::npos);
  const Tensor x = test::random_tensor({2, 4, 6, 3}, 144);
  const std::vector<double> ln =
      ref::layer_norm(values(x), {2, 4, 6, 3}, {3}, values(gamma), values(beta), 1e-3);
  const std::vector<double> up = ref::upsampling2d(ln, 2, 4, 6, 3, 2, 3, false);
  const std::vector<double> ln2 =
      ref::layer_norm(up, {2, 8, 18, 3}, {2, 3}, values(gamma2), {}, 1e-2);
  // channels_first: [8, 18, 3] is (channels 8, height 18, width 3)
  const ref::Array ln2_cl = channels_last(ref::Array{{2, 8, 18, 3}, ln2});
  const ref::Array upcf{{2, 54, 6, 8}, ref::upsampling2d(ln2_cl.data, 2, 18, 3, 8, 3, 2, true)};
  check_all_ok(verify_imported(m, {{"x", x}},
                               {{"ln", tensor_of({2, 4, 6, 3}, ln)},
                                {"up", tensor_of({2, 8, 18, 3}, up)},
                                {"ln2", tensor_of({2, 8, 18, 3}, ln2)},
                                {"upcf", tensor_of(channels_first(upcf))}}),
               4);
}

namespace {

// Two inputs a, b [3, 7]; add, subtract, multiply (three inputs), average, maximum, minimum,
// then two concatenations: the layers and the expected outputs.
struct MergeCase {
  std::vector<std::pair<std::string, std::vector<std::string>>> layers = {
      {"Add", {"a", "b"}},     {"Subtract", {"a", "b"}}, {"Multiply", {"a", "b", "add"}},
      {"Average", {"a", "b"}}, {"Maximum", {"a", "b"}},  {"Minimum", {"a", "b"}}};
  Tensor a = test::random_tensor({2, 3, 7}, 101), b = test::random_tensor({2, 3, 7}, 102);

  std::map<std::string, Tensor> expected() const {
    std::map<std::string, std::vector<double>> v = {{"a", values(a)}, {"b", values(b)}};
    for (const auto& [cls, in] : layers) {
      std::string kind = cls;
      std::transform(kind.begin(), kind.end(), kind.begin(), ::tolower);
      std::vector<std::vector<double>> xs;
      for (const auto& i : in) xs.push_back(v.at(i));
      v[kind] =
          ref::merge(kind, xs, std::vector<std::vector<int64_t>>(xs.size(), {2, 3, 7}), {2, 3, 7});
    }
    std::map<std::string, Tensor> out;
    for (const auto& [name, data] : v)
      if (name != "a" && name != "b") out[name] = tensor_of({2, 3, 7}, data);
    out["cat_steps"] =
        tensor_of({2, 6, 7}, ref::concat({v["add"], v["subtract"]}, {{2, 3, 7}, {2, 3, 7}}, 1));
    out["cat_last"] =
        tensor_of({2, 3, 28}, ref::concat({v["multiply"], v["average"], v["maximum"], v["minimum"]},
                                          std::vector<std::vector<int64_t>>(4, {2, 3, 7}), 2));
    return out;
  }
};

}  // namespace

TEST_CASE("Keras import: merge layers in a Keras 2 functional model") {
  test::NamedTempDir dir("fg_keras_layers", "merge2");
  const MergeCase c;
  std::vector<std::string> layers = {k2_input("a", "3, 7"), k2_input("b", "3, 7")};
  std::vector<std::string> names = {"a", "b"};
  for (const auto& [cls, in] : c.layers) {
    std::string name = cls;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    layers.push_back(k2_layer(cls, name, "", in));
    names.push_back(name);
  }
  layers.push_back(k2_layer("Concatenate", "cat_steps", R"("axis": 1)", {"add", "subtract"}));
  layers.push_back(k2_layer("Concatenate", "cat_last", R"("axis": -1)",
                            {"multiply", "average", "maximum", "minimum"}));
  names.insert(names.end(), {"cat_steps", "cat_last"});
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, k2_functional(layers, {"a", "b"}, {"cat_steps", "cat_last"}),
                           names, {});
  const ImportedModel m = import_keras_model(path);
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  CHECK(yaml.find("{name: multiply, op: multiply, inputs: [a, b, add]}") != std::string::npos);
  CHECK(yaml.find("{name: cat_steps, op: concatenate, inputs: [add, subtract], axis: 1}") !=
        std::string::npos);
  CHECK(yaml.find("{name: cat_last, op: concatenate, inputs: [multiply, average, maximum, "
                  "minimum]}") != std::string::npos);
  CHECK(m.graph->outputs == std::vector<std::string>{"cat_steps", "cat_last"});
  check_all_ok(verify_imported(m, {{"a", c.a}, {"b", c.b}}, c.expected()), 8);
}

TEST_CASE("Keras import: merge layers in a Keras 3 .keras functional model") {
  test::NamedTempDir dir("fg_keras_layers", "merge3");
  const MergeCase c;
  auto tensor_ref = [](const std::string& name) {
    return fmt::format(
        R"({{"class_name": "__keras_tensor__", "config": {{"shape": [null, 3, 7], "dtype": "float32", "keras_history": ["{}", 0, 0]}}}})",
        name);
  };
  auto layer = [&](const std::string& cls, const std::string& name, const std::string& extra,
                   const std::vector<std::string>& in) {
    std::vector<std::string> refs;
    for (const auto& i : in) refs.push_back(tensor_ref(i));
    return fmt::format(
        R"({{"module": "keras.layers", "class_name": "{}", "config": {{"name": "{}", "trainable": true, "dtype": {{"module": "keras", "class_name": "DTypePolicy", "config": {{"name": "float32"}}}}{}}}, "registered_name": null, "name": "{}", "inbound_nodes": [{}]}})",
        cls, name, extra, name,
        in.empty() ? "" : R"({"args": [[)" + join(refs) + R"(]], "kwargs": {}})");
  };
  std::vector<std::string> layers = {
      layer("InputLayer", "a", R"(, "batch_shape": [null, 3, 7], "sparse": false)", {}),
      layer("InputLayer", "b", R"(, "batch_shape": [null, 3, 7], "sparse": false)", {})};
  for (const auto& [cls, in] : c.layers) {
    std::string name = cls;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    layers.push_back(layer(cls, name, "", in));
  }
  layers.push_back(layer("Concatenate", "cat_steps", R"(, "axis": 1)", {"add", "subtract"}));
  layers.push_back(layer("Concatenate", "cat_last", R"(, "axis": -1)",
                         {"multiply", "average", "maximum", "minimum"}));
  const std::string config = fmt::format(
      R"({{"module": "keras.src.models.functional", "class_name": "Functional", "config": {{"name": "functional", "trainable": true, "layers": [{}], "input_layers": [["a", 0, 0], ["b", 0, 0]], "output_layers": [["cat_steps", 0, 0], ["cat_last", 0, 0]]}}, "registered_name": "Functional"}})",
      join(layers));
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(h5, {}, {"vars", "layers/add/vars", "layers/concatenate/vars"});
  test::write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  CHECK(m.graph->nodes.size() == 8);
  check_all_ok(verify_imported(m, {{"a", c.a}, {"b", c.b}}, c.expected()), 8);
}

TEST_CASE("Keras import: layers it cannot convert are clear errors") {
  test::NamedTempDir dir("fg_keras_layers", "errors");
  struct Case {
    std::string layer, weights_cls, message;
  };
  int n = 0;
  for (
      const Case& c :
      {Case{
           k2_seq_layer(
               "Convolution2D", "c1",
               R"("batch_input_shape": [null, 5, 5, 1], "nb_filter": 2, "nb_row": 3, "nb_col": 3)"),
           "", "layer 'c1' (Convolution2D): border_mode missing is not supported (valid, same)"},
       Case{
           k2_seq_layer("BatchNormalization", "bn", R"("batch_input_shape": [null, 5], "mode": 2)"),
           "", "layer 'bn' (BatchNormalization): Keras 1 mode 1 and 2"},
       Case{k2_seq_layer("Merge", "mg", R"("batch_input_shape": [null, 5], "mode": "sum")"), "",
            "layer 'mg' (Merge): Keras 1's Merge layer is not supported"},
       Case{k2_seq_layer(
                "Conv2D", "c2",
                R"("batch_input_shape": [null, 5, 5, 1], "filters": 2, "kernel_size": [3, 3, 3])"),
            "",
            "layer 'c2' (Conv2D): 'kernel_size' is [3,3,3], expected an integer or a list of 2"}}) {
    CAPTURE(c.layer);
    const std::string path = dir.path + fmt::format("/e{}.h5", n++);
    test::write_legacy_model(path, k2_sequential({c.layer}), {}, {});
    const std::string message = import_error(path);
    CAPTURE(message);
    CHECK(message.find(c.message) != std::string::npos);
  }
  // an Embedding must read the model input (the ids)
  const std::string path = dir.path + "/emb.h5";
  test::write_legacy_model(
      path,
      k2_sequential(
          {k2_seq_layer(
               "Dense", "d",
               R"("batch_input_shape": [null, 4], "units": 4, "activation": "linear", "use_bias": false)"),
           k2_seq_layer("Embedding", "emb", R"("input_dim": 5, "output_dim": 2)")}),
      {"d", "emb"},
      {{"d", {{"kernel:0", test::random_tensor({4, 4}, 1)}}},
       {"emb", {{"embeddings:0", test::random_tensor({5, 2}, 2)}}}});
  CHECK(import_error(path).find("layer 'emb' (Embedding): an Embedding reading 'd', which is not "
                                "a model input") != std::string::npos);
}

TEST_CASE("Keras import: TimeDistributed over a Dense, legacy and Keras 3") {
  test::NamedTempDir dir("fg_keras_layers", "td");
  const Tensor kernel = test::random_tensor({3, 5}, 161), bias = test::random_tensor({5}, 162);
  const Tensor x = test::random_tensor({2, 7, 3}, 163);
  std::vector<double> want;
  for (int64_t r = 0; r < 14; ++r)
    for (int j = 0; j < 5; ++j) {
      double sum = bias.data<float>()[j];
      for (int i = 0; i < 3; ++i)
        sum += double(x.data<float>()[r * 3 + i]) * kernel.data<float>()[i * 5 + j];
      want.push_back(std::tanh(sum));
    }
  const std::string dense =
      R"("layer": {"class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "units": 5, "activation": "tanh", "use_bias": true}})";
  {  // tf.keras 2: the weights under the wrapper's group, named after the inner layer
    const std::string path = dir.path + "/m.h5";
    test::write_legacy_model(
        path,
        k2_sequential({k2_seq_layer("TimeDistributed", "td",
                                    R"("batch_input_shape": [null, 7, 3], )" + dense)}),
        {"td"}, {{"td", {{"kernel:0", kernel}, {"bias:0", bias}}}});
    const ImportedModel m = import_keras_model(path);
    const std::string yaml = format_imported_yaml(m);
    CAPTURE(yaml);
    CHECK(yaml.find("{name: td, op: dense, input: td_input, units: 5, activation: tanh}") !=
          std::string::npos);
    CHECK(yaml.find("# td (TimeDistributed over a Dense)") != std::string::npos);
    check_all_ok(verify_imported(m, {{"td_input", x}}, {{"td", tensor_of({2, 7, 5}, want)}}), 1);
  }
  {  // Keras 3: the wrapped layer's variables under <wrapper>/layer/vars
    const std::string config =
        k3_sequential("7, 3", "float32", {{"TimeDistributed", R"("name": "td", )" + dense}});
    const std::string h5 = dir.path + "/model.weights.h5";
    test::write_weights_h5(h5,
                           {{"layers/time_distributed/layer/vars/0", kernel},
                            {"layers/time_distributed/layer/vars/1", bias}},
                           {"vars", "layers/time_distributed/vars"});
    test::write_keras_zip(dir.path + "/m.keras", config, h5);
    const ImportedModel m = import_keras_model(dir.path + "/m.keras");
    check_all_ok(verify_imported(m, {{"x", x}}, {{"td", tensor_of({2, 7, 5}, want)}}), 1);
  }
  // over anything else: an error naming the wrapper
  const std::string path = dir.path + "/conv.h5";
  test::write_legacy_model(
      path,
      k2_sequential({k2_seq_layer(
          "TimeDistributed", "tdc",
          R"("batch_input_shape": [null, 7, 5, 5, 1], "layer": {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": [3, 3]}})")}),
      {"tdc"}, {});
  CHECK(import_error(path).find("layer 'tdc' (TimeDistributed): TimeDistributed over a Conv2D is "
                                "not supported") != std::string::npos);
}
