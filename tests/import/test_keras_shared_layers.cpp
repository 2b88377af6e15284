// Shared layers (a Keras layer called more than once in a functional model): one node per call
// (`<layer>` for call 0, `<layer>_1`, ... for later calls, or `<layer>_call1` when a layer of
// the model is named `<layer>_1`), the later calls' nodes with `weights_of` the first's, the
// consumers wired by node_index. Siamese Dense and shared LSTM models written as Keras 2 `.h5`
// and Keras 3 `.keras` files (tests/import/keras_writers.hpp), imported, read back from the
// YAML and compared layer by layer with naive references (tests/reference/); the summary
// counts a shared layer's weights once, as Keras does.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fusiongraph/import.hpp>

#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

using test::check_imported;
using test::import_error;

// A tensor one call reads: [layer, node_index] (tensor_index 0).
using Ref = std::pair<std::string, int>;
// Per call, the tensors it reads.
using Calls = std::vector<std::vector<Ref>>;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// Keras 2: "inbound_nodes": [[[name, node, 0, {}], ...], ...], one list per call.
std::string k2_layer(const std::string& cls, const std::string& name, const std::string& fields,
                     const Calls& calls) {
  std::vector<std::string> nodes;
  for (const auto& call : calls) {
    std::vector<std::string> refs;
    for (const auto& [layer, node] : call)
      refs.push_back(fmt::format(R"(["{}", {}, 0, {{}}])", layer, node));
    nodes.push_back("[" + join(refs) + "]");
  }
  return fmt::format(
      R"({{"name": "{}", "class_name": "{}", "config": {{"name": "{}", "trainable": true{}}}, "inbound_nodes": [{}]}})",
      name, cls, name, fields.empty() ? "" : ", " + fields, join(nodes));
}

std::string k2_model(const std::vector<std::string>& layers, const std::vector<Ref>& inputs,
                     const std::vector<Ref>& outputs) {
  auto ends = [](const std::vector<Ref>& refs) {
    std::vector<std::string> e;
    for (const auto& [layer, node] : refs)
      e.push_back(fmt::format(R"(["{}", {}, 0])", layer, node));
    return join(e);
  };
  return fmt::format(
      R"({{"class_name": "Model", "config": {{"name": "siamese", "layers": [{}], "input_layers": [{}], "output_layers": [{}]}}}})",
      join(layers), ends(inputs), ends(outputs));
}

// Keras 3: "inbound_nodes": [{"args": [tensor], "kwargs": {}}, ...]; a merge layer's call
// {"args": [[tensor, tensor]]}.
std::string k3_layer(const std::string& cls, const std::string& name, const std::string& fields,
                     const Calls& calls, bool merge = false) {
  std::vector<std::string> nodes;
  for (const auto& call : calls) {
    std::vector<std::string> refs;
    for (const auto& [layer, node] : call)
      refs.push_back(fmt::format(
          R"({{"class_name": "__keras_tensor__", "config": {{"shape": [null], "dtype": "float32", "keras_history": ["{}", {}, 0]}}}})",
          layer, node));
    nodes.push_back(fmt::format(R"({{"args": [{}], "kwargs": {{}}}})",
                                merge ? "[" + join(refs) + "]" : join(refs)));
  }
  return fmt::format(
      R"({{"module": "keras.layers", "class_name": "{}", "config": {{"name": "{}", "trainable": true, "dtype": {{"module": "keras", "class_name": "DTypePolicy", "config": {{"name": "float32"}}}}{}}}, "registered_name": null, "name": "{}", "inbound_nodes": [{}]}})",
      cls, name, fields.empty() ? "" : ", " + fields, name, join(nodes));
}

std::string k3_model(const std::vector<std::string>& layers, const std::vector<Ref>& inputs,
                     const std::vector<Ref>& outputs) {
  auto ends = [](const std::vector<Ref>& refs) {
    std::vector<std::string> e;
    for (const auto& [layer, node] : refs)
      e.push_back(fmt::format(R"(["{}", {}, 0])", layer, node));
    return join(e);
  };
  return fmt::format(
      R"({{"module": "keras.src.models.functional", "class_name": "Functional", "config": {{"name": "siamese", "trainable": true, "layers": [{}], "input_layers": [{}], "output_layers": [{}]}}, "registered_name": "Functional"}})",
      join(layers), ends(inputs), ends(outputs));
}

Tensor tensor_of(const std::vector<int64_t>& shape, const std::vector<double>& data) {
  Tensor t(DType::f32, Dims(shape.begin(), shape.end()));
  REQUIRE(static_cast<size_t>(t.size()) == data.size());
  for (size_t i = 0; i < data.size(); ++i) t.mutable_data<float>()[i] = static_cast<float>(data[i]);
  return t;
}

int64_t total_params(const ImportedModel& m) {
  const auto graph = compile_graph(load_graph_string(format_imported_yaml(m)), builtin_ops());
  return summarize(graph, {}).total_params;
}

// Siamese Dense: enc(a), enc(b), diff = enc(a) - enc(b); outputs diff and call 1 of enc.
struct SiameseDense {
  static constexpr int64_t batch = 7, in = 13, units = 5;
  Tensor kernel = test::random_tensor({in, units}, 51), bias = test::random_tensor({units}, 52);
  Tensor a = test::random_tensor({batch, in}, 53), b = test::random_tensor({batch, in}, 54);

  std::map<std::string, Tensor> expected() const {
    const auto k = test::to_doubles(kernel), bb = test::to_doubles(bias);
    const auto ea = ref::dense(test::to_doubles(a), {batch, in}, k, bb, units, "tanh");
    const auto eb = ref::dense(test::to_doubles(b), {batch, in}, k, bb, units, "tanh");
    std::vector<double> diff(ea.size());
    for (size_t i = 0; i < diff.size(); ++i) diff[i] = ea[i] - eb[i];
    return {{"enc", tensor_of({batch, units}, ea)},
            {"enc_1", tensor_of({batch, units}, eb)},
            {"diff", tensor_of({batch, units}, diff)}};
  }
  void check(const ImportedModel& m) const {
    const std::string yaml = format_imported_yaml(m);
    CAPTURE(yaml);
    CHECK(yaml.find("{name: enc, op: dense, input: a, units: 5, activation: tanh}") !=
          std::string::npos);
    CHECK(yaml.find("{name: enc_1, op: dense, input: b, weights_of: enc, units: 5, activation: "
                    "tanh}") != std::string::npos);
    CHECK(yaml.find("call 1 of the shared layer 'enc': the weights are enc's") !=
          std::string::npos);
    CHECK(yaml.find("{name: diff, op: subtract, inputs: [enc, enc_1]}") != std::string::npos);
    CHECK(m.graph->outputs == std::vector<std::string>{"diff", "enc_1"});
    CHECK(m.weights.tensors().size() == 2);  // enc.kernel, enc.bias: once
    CHECK(m.weights.find("enc_1.kernel") == nullptr);
    CHECK(total_params(m) == in * units + units);  // Keras's model.summary(): once
    check_imported(m, {{"a", a}, {"b", b}}, expected());
  }
};

const std::string kDenseFields = R"("units": 5, "activation": "tanh", "use_bias": true)";

// Shared LSTM: lstm(a), lstm(b) concatenated, then a Dense named lstm_1 (so the second call is
// lstm_call1).
struct SharedLstm {
  static constexpr int64_t batch = 3, steps = 7, features = 4, units = 5;
  Tensor kernel = test::random_tensor({features, 4 * units}, 61),
         recurrent = test::random_tensor({units, 4 * units}, 62),
         bias = test::random_tensor({4 * units}, 63);
  Tensor head_kernel = test::random_tensor({2 * units, 3}, 64),
         head_bias = test::random_tensor({3}, 65);
  Tensor a = test::random_tensor({batch, steps, features}, 66),
         b = test::random_tensor({batch, steps, features}, 67);

  std::vector<double> lstm_of(const Tensor& x) const {
    ref::RnnArgs r;
    r.lstm = true;
    r.batch = batch, r.steps = steps, r.features = features, r.units = units;
    r.x = x.data<float>(), r.kernel = kernel.data<float>(), r.recurrent = recurrent.data<float>();
    r.bias = bias.data<float>();
    return ref::rnn(r);
  }
  std::map<std::string, Tensor> expected() const {
    const auto la = lstm_of(a), lb = lstm_of(b);
    std::vector<double> cat;
    for (int64_t s = 0; s < batch; ++s) {
      cat.insert(cat.end(), la.begin() + s * units, la.begin() + (s + 1) * units);
      cat.insert(cat.end(), lb.begin() + s * units, lb.begin() + (s + 1) * units);
    }
    const auto head = ref::dense(cat, {batch, 2 * units}, test::to_doubles(head_kernel),
                                 test::to_doubles(head_bias), 3, "linear");
    return {{"lstm", tensor_of({batch, units}, la)},
            {"lstm_call1", tensor_of({batch, units}, lb)},
            {"cat", tensor_of({batch, 2 * units}, cat)},
            {"lstm_1", tensor_of({batch, 3}, head)}};
  }
  void check(const ImportedModel& m) const {
    const std::string yaml = format_imported_yaml(m);
    CAPTURE(yaml);
    CHECK(yaml.find("{name: lstm_call1, op: lstm, input: b, weights_of: lstm, units: 5") !=
          std::string::npos);
    CHECK(yaml.find("{name: cat, op: concatenate, inputs: [lstm, lstm_call1]}") !=
          std::string::npos);
    // Keras: LSTM 4 * (F*u + u*u + u) once, the head 2u * 3 + 3
    CHECK(total_params(m) == 4 * (features * units + units * units + units) + 2 * units * 3 + 3);
    check_imported(m, {{"a", a}, {"b", b}}, expected());
  }
};

const std::string kLstmFields =
    R"("units": 5, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true, "return_sequences": false, "go_backwards": false, "stateful": false, "dropout": 0.0, "recurrent_dropout": 0.0)";

}  // namespace

TEST_CASE("Keras import: a Siamese Dense (shared layer) in a Keras 2 .h5") {
  test::NamedTempDir dir("fg_keras_shared", "dense2");
  const SiameseDense c;
  const std::string input_fields =
      R"("batch_input_shape": [null, 13], "dtype": "float32", "sparse": false)";
  const std::vector<std::string> layers = {
      k2_layer("InputLayer", "a", input_fields, {}), k2_layer("InputLayer", "b", input_fields, {}),
      k2_layer("Dense", "enc", kDenseFields, {{{"a", 0}}, {{"b", 0}}}),
      k2_layer("Subtract", "diff", "", {{{"enc", 0}, {"enc", 1}}})};
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, k2_model(layers, {{"a", 0}, {"b", 0}}, {{"diff", 0}, {"enc", 1}}),
                           {"a", "b", "enc", "diff"},
                           {{"enc", {{"kernel:0", c.kernel}, {"bias:0", c.bias}}}});
  c.check(import_keras_model(path));

  // the round trip on the command line: the weights file holds enc's once
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  auto cli = test::run_cli(fmt::format("import {} --graph {} --weights {}", path, g, w));
  CAPTURE(cli.out);
  CHECK(cli.code == 0);
  CHECK(WeightStore::load_safetensors(w).tensors().size() == 2);
  cli = test::run_cli(fmt::format("summary {}", g));
  CHECK(cli.code == 0);
  CHECK(cli.out.find("shared: enc") != std::string::npos);
  CHECK(cli.out.find("Total params: 70") != std::string::npos);  // 13 * 5 + 5

  // a consumer naming a call the layer does not have
  const std::vector<std::string> bad = {
      k2_layer("InputLayer", "a", input_fields, {}), k2_layer("InputLayer", "b", input_fields, {}),
      k2_layer("Dense", "enc", kDenseFields, {{{"a", 0}}, {{"b", 0}}}),
      k2_layer("Subtract", "diff", "", {{{"enc", 0}, {"enc", 2}}})};
  test::write_legacy_model(path, k2_model(bad, {{"a", 0}, {"b", 0}}, {{"diff", 0}}),
                           {"a", "b", "enc", "diff"},
                           {{"enc", {{"kernel:0", c.kernel}, {"bias:0", c.bias}}}});
  CHECK(import_error(path).find("layer 'diff' reads call 2 of 'enc', which is not defined in "
                                "the model") != std::string::npos);
}

TEST_CASE("Keras import: a Siamese Dense (shared layer) in a Keras 3 .keras") {
  test::NamedTempDir dir("fg_keras_shared", "dense3");
  const SiameseDense c;
  const std::string input_fields = R"("batch_shape": [null, 13], "sparse": false)";
  const std::vector<std::string> layers = {
      k3_layer("InputLayer", "a", input_fields, {}), k3_layer("InputLayer", "b", input_fields, {}),
      k3_layer("Dense", "enc", kDenseFields, {{{"a", 0}}, {{"b", 0}}}),
      k3_layer("Subtract", "diff", "", {{{"enc", 0}, {"enc", 1}}}, true)};
  const std::string h5 = dir.path + "/model.weights.h5";
  // saving_lib: the layer once, under its class name
  test::write_weights_h5(h5, {{"layers/dense/vars/0", c.kernel}, {"layers/dense/vars/1", c.bias}},
                         {"vars", "layers/subtract/vars"});
  test::write_keras_zip(dir.path + "/m.keras",
                        k3_model(layers, {{"a", 0}, {"b", 0}}, {{"diff", 0}, {"enc", 1}}), h5);
  c.check(import_keras_model(dir.path + "/m.keras"));
}

TEST_CASE("Keras import: a shared LSTM in a Keras 2 .h5, the second call renamed") {
  test::NamedTempDir dir("fg_keras_shared", "lstm2");
  const SharedLstm c;
  const std::string input_fields =
      R"("batch_input_shape": [null, 7, 4], "dtype": "float32", "sparse": false)";
  // the second call's inputs come from a layer listed after the LSTM: Keras defers it
  const std::vector<std::string> layers = {
      k2_layer("InputLayer", "a", input_fields, {}),
      k2_layer("LSTM", "lstm", kLstmFields, {{{"a", 0}}, {{"b", 0}}}),
      k2_layer("InputLayer", "b", input_fields, {}),
      k2_layer("Concatenate", "cat", R"("axis": -1)", {{{"lstm", 0}, {"lstm", 1}}}),
      k2_layer("Dense", "lstm_1", R"("units": 3, "activation": "linear", "use_bias": true)",
               {{{"cat", 0}}})};
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, k2_model(layers, {{"a", 0}, {"b", 0}}, {{"lstm_1", 0}}),
      {"a", "lstm", "b", "cat", "lstm_1"},
      {{"lstm", {{"kernel:0", c.kernel}, {"recurrent_kernel:0", c.recurrent}, {"bias:0", c.bias}}},
       {"lstm_1", {{"kernel:0", c.head_kernel}, {"bias:0", c.head_bias}}}});
  c.check(import_keras_model(path));
}

TEST_CASE("Keras import: a shared LSTM in a Keras 3 .keras") {
  test::NamedTempDir dir("fg_keras_shared", "lstm3");
  const SharedLstm c;
  const std::string input_fields = R"("batch_shape": [null, 7, 4], "sparse": false)";
  const std::vector<std::string> layers = {
      k3_layer("InputLayer", "a", input_fields, {}), k3_layer("InputLayer", "b", input_fields, {}),
      k3_layer("LSTM", "lstm", kLstmFields, {{{"a", 0}}, {{"b", 0}}}),
      k3_layer("Concatenate", "cat", R"("axis": -1)", {{{"lstm", 0}, {"lstm", 1}}}, true),
      k3_layer("Dense", "lstm_1", R"("units": 3, "activation": "linear", "use_bias": true)",
               {{{"cat", 0}}})};
  const std::string h5 = dir.path + "/model.weights.h5";
  test::write_weights_h5(h5,
                         {{"layers/lstm/cell/vars/0", c.kernel},
                          {"layers/lstm/cell/vars/1", c.recurrent},
                          {"layers/lstm/cell/vars/2", c.bias},
                          {"layers/dense/vars/0", c.head_kernel},
                          {"layers/dense/vars/1", c.head_bias}},
                         {"vars", "layers/lstm/vars", "layers/concatenate/vars"});
  test::write_keras_zip(dir.path + "/m.keras",
                        k3_model(layers, {{"a", 0}, {"b", 0}}, {{"lstm_1", 0}}), h5);
  c.check(import_keras_model(dir.path + "/m.keras"));
}
