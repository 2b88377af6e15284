// Keras 3 `.keras` archives made at test time by the format's rules (keras/src/saving/
// saving_lib.py): config.json, metadata.json and model.weights.h5 with the weights under
// layers/<snake_case class>[_N]/vars/<i> (recurrent layers under cell/vars). The weights come
// from a real fixture, so the import still verifies against Keras's own activations.
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

using test::write_keras_zip;
using test::write_weights_h5;

std::string layer(const std::string& cls, const std::string& name, const std::string& extra) {
  return fmt::format(
      R"({{"module": "keras.layers", "class_name": "{}", "config": {{"name": "{}", "trainable": true, "dtype": {{"module": "keras", "class_name": "DTypePolicy", "config": {{"name": "float32"}}}}{}}}, "registered_name": null}})",
      cls, name, extra.empty() ? "" : ", " + extra);
}

std::string sequential(const std::vector<std::string>& layers) {
  std::string list;
  for (const auto& l : layers) list += (list.empty() ? "" : ", ") + l;
  return R"({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "layers": [)" +
         list + "]}}";
}

Tensor identity(int64_t n) {
  Tensor t(DType::f32, {n, n});
  for (int64_t i = 0; i < n; ++i) t.mutable_data<float>()[i * n + i] = 1.f;
  return t;
}

}  // namespace

TEST_CASE(".keras: layers named by snake-case class and numbered in model order") {
  test::NamedTempDir dir("fg_keras3", "dense");
  const std::string fixture = test::source_path("tests/data/keras/activations/ReLU_0_model.h5");
  const ImportedModel legacy = import_keras_model(fixture);
  // dense (the fixture's) -> a second Dense named 'identity' with the identity kernel ->
  // ReLU: the same function, so Keras's activations of 'dense' and 're_lu_1' still hold.
  const std::string config = sequential(
      {layer("InputLayer", "dense_input", R"("batch_shape": [null, 16], "sparse": false)"),
       layer("Dense", "dense", R"("units": 32, "activation": "linear", "use_bias": true)"),
       layer("Dense", "identity", R"("units": 32, "activation": "linear", "use_bias": true)"),
       layer("ReLU", "re_lu_1", R"("max_value": null, "negative_slope": 0.0, "threshold": 0.0)")});
  const std::string h5 = dir.path + "/model.weights.h5";
  write_weights_h5(h5,
                   {{"layers/dense/vars/0", *legacy.weights.find("dense.kernel")},
                    {"layers/dense/vars/1", *legacy.weights.find("dense.bias")},
                    {"layers/dense_1/vars/0", identity(32)},
                    {"layers/dense_1/vars/1", Tensor(DType::f32, {32})}},
                   {"vars", "layers/re_lu/vars"});
  const std::string path = dir.path + "/model.keras";
  write_keras_zip(path, config, h5);
  const ImportedModel m = import_keras_model(path);
  CHECK(m.keras_version == "3.3.3");
  CHECK(m.weights.find("identity.kernel")->shape() == Dims{32, 32});
  ModelOptions options;
  options.optimize = false;
  Model model(std::make_shared<CompiledGraph>(compile_graph(m.graph, builtin_ops())), m.weights,
              options);
  const VerifyReport r = verify_against_reference(
      model, read_reference(
                 test::source_path("tests/data/keras/activations/ReLU_0_inputs_and_outputs.h5")));
  CHECK(r.ok());
  CHECK(r.rows.size() == 2);
  // through the command line too
  const auto cli = test::run_cli(fmt::format(
      "import {} --graph {}/g.yaml --weights {}/w.safetensors", path, dir.path, dir.path));
  CAPTURE(cli.out);
  CHECK(cli.code == 0);
  // a zip without config.json
  write_keras_zip(dir.path + "/noconfig.keras", config, h5, false);
  CHECK_THROWS_WITH_AS(import_keras_model(dir.path + "/noconfig.keras"),
                       doctest::Contains("has no config.json"), Error);
  // weights bound by layer name instead of class (a wrong file) are missing, with the layer named
  write_weights_h5(h5, {{"layers/identity/vars/0", identity(32)}}, {"vars"});
  write_keras_zip(dir.path + "/byname.keras", config, h5);
  CHECK_THROWS_WITH_AS(import_keras_model(dir.path + "/byname.keras"),
                       doctest::Contains("layer 'dense' (Dense)"), Error);
}

TEST_CASE(".keras: recurrent weights under cell/vars, variables in numeric order") {
  test::NamedTempDir dir("fg_keras3", "lstm");
  Tensor kernel = test::random_tensor({2, 12}, 1), recurrent = test::random_tensor({3, 12}, 2),
         bias = test::random_tensor({12}, 3);
  const std::string config = sequential(
      {layer("InputLayer", "x", R"("batch_shape": [null, 5, 2], "sparse": false)"),
       layer(
           "LSTM", "rnn",
           R"("units": 3, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": true, "return_sequences": false, "go_backwards": false, "stateful": false)")});
  const std::string h5 = dir.path + "/model.weights.h5";
  write_weights_h5(h5,
                   {{"layers/lstm/cell/vars/0", kernel},
                    {"layers/lstm/cell/vars/1", recurrent},
                    {"layers/lstm/cell/vars/2", bias}},
                   {"vars", "layers/lstm/vars"});
  write_keras_zip(dir.path + "/m.keras", config, h5);
  const ImportedModel m = import_keras_model(dir.path + "/m.keras");
  CHECK(test::to_doubles(*m.weights.find("rnn.kernel")) == test::to_doubles(kernel));
  CHECK(test::to_doubles(*m.weights.find("rnn.recurrent_kernel")) == test::to_doubles(recurrent));
  CHECK(test::to_doubles(*m.weights.find("rnn.bias")) == test::to_doubles(bias));
}
