// Every Keras fixture of tests/data/keras/ (36 real models saved by Keras 1.2-2.3, with the
// inputs Keras was fed and the activations it computed: MANIFEST.json) imports, runs and matches
// Keras layer by layer within rtol 1e-4 / atol 1e-5. The expected values are Keras's own.
#include <doctest/doctest.h>

#include <filesystem>
#include <fusiongraph/import.hpp>

#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

std::vector<std::string> fixture_models() {
  std::vector<std::string> models;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(test::source_path("tests/data/keras"))) {
    const std::string p = e.path().string();
    if (p.size() > 9 && p.substr(p.size() - 9) == "_model.h5") models.push_back(p);
  }
  std::sort(models.begin(), models.end());
  return models;
}

std::string reference_of(const std::string& model) {
  return model.substr(0, model.size() - 9) + "_inputs_and_outputs.h5";
}

// The model as a user gets it: the written YAML read back, compiled, with the weights.
std::unique_ptr<Model> imported_model(const ImportedModel& m) {
  auto def = load_graph_string(format_imported_yaml(m), "imported.yaml");
  auto graph = std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops()));
  ModelOptions options;
  options.optimize = false;
  options.threads = 1;
  return std::make_unique<Model>(graph, m.weights, options);
}

}  // namespace

TEST_CASE("every Keras fixture imports and matches Keras's activations layer by layer") {
  const auto models = fixture_models();
  REQUIRE(models.size() == 36);
  int verified = 0;
  for (const std::string& path : models) {
    CAPTURE(path);
    const ImportedModel m = import_keras_model(path);
    auto model = imported_model(m);
    ReferenceSet ref = read_reference(reference_of(path));
    if (ref.activations.empty()) {
      // simple_lstm_tf_keras_2 stores only the inputs and the training targets (outputs/), no
      // value Keras computed: it can only be run.
      CHECK(path.find("simple_lstm_tf_keras_2") != std::string::npos);
      const auto out = model->run({{m.graph->inputs[0].name, ref.inputs.begin()->second}});
      test::check_shape(out.at("dense_1"), {100, 1});
      CHECK_THROWS_WITH_AS(verify_against_reference(*model, ref), doctest::Contains("no node"),
                           Error);
      continue;
    }
    const VerifyReport report = verify_against_reference(*model, std::move(ref));
    for (const VerifyRow& row : report.rows) {
      CAPTURE(row.node);
      CAPTURE(row.max_abs);
      CAPTURE(row.problem);
      CHECK(row.ok);
    }
    CHECK(report.ok());
    CHECK(report.unused.empty());  // every Keras activation found its node
    CHECK(!report.rows.empty());
    ++verified;
  }
  CHECK(verified == 35);
}

TEST_CASE("verify finds the first divergence when a weight is off") {
  const std::string path = test::source_path("tests/data/keras/activations/ELU_0_model.h5");
  ImportedModel m = import_keras_model(path);
  Tensor kernel = *m.weights.find("dense.kernel");
  Tensor changed(DType::f32, kernel.shape());
  std::copy_n(kernel.data<float>(), kernel.size(), changed.mutable_data<float>());
  changed.mutable_data<float>()[5] += 1e-3f;
  m.weights.set("dense.kernel", changed);
  const VerifyReport r =
      verify_against_reference(*imported_model(m), read_reference(reference_of(path)));
  CHECK(!r.ok());
  CHECK(r.first_divergence == "dense");
  REQUIRE(r.rows.size() == 2);
  CHECK(!r.rows[0].ok);
  CHECK(r.rows[0].max_abs > 1e-4);
  // a looser tolerance accepts it
  const VerifyReport loose =
      verify_against_reference(*imported_model(m), read_reference(reference_of(path)), {0.0, 1.0});
  CHECK(loose.ok());
}

TEST_CASE("the imported YAML keeps Keras's names, defaults out, comments where it changed") {
  const ImportedModel cf = import_keras_model(
      test::source_path("tests/data/keras/conv1d/conv1d_k3_s2_d1_cf_valid_model.h5"));
  const std::string yaml = format_imported_yaml(cf);
  CAPTURE(yaml);
  CHECK(yaml.find("conv0_input: {shape: [3, 16]}") != std::string::npos);  // channels first kept
  CHECK(yaml.find("op: permute") != std::string::npos);
  CHECK(yaml.find("# conv0 (Conv1D, channels_first)") != std::string::npos);
  CHECK(yaml.find("strides: 2") != std::string::npos);
  CHECK(yaml.find("padding") == std::string::npos);   // valid is the default
  CHECK(yaml.find("use_bias") == std::string::npos);  // true is the default
  CHECK(yaml.find("outputs: [conv0]") != std::string::npos);
  const ImportedModel relu =
      import_keras_model(test::source_path("tests/data/keras/activations/ReLU_0_model.h5"));
  const std::string r = format_imported_yaml(relu);
  CHECK(r.find("{name: re_lu_1, op: relu, input: dense}") != std::string::npos);
  const ImportedModel k1 = import_keras_model(
      test::source_path("tests/data/keras/simple_lstm/simple_lstm_tf_keras_1_model.h5"));
  CHECK(k1.keras_version == "1.2.2");
  CHECK(format_imported_yaml(k1).find("Keras 1 weights") != std::string::npos);
  CHECK(k1.weights.find("lstm_1.kernel")->shape() == Dims{1, 200});
}

TEST_CASE("summary of an imported model counts Keras's parameters") {
  // Keras's model.summary() counts: LSTM(50) on 1 feature 4 * (50 * (1 + 50) + 50) = 10400,
  // Dense(1) 51; Conv1D(4, k=3) on 3 channels 3 * 3 * 4 + 4 = 40 (the permutes have none).
  struct Case {
    const char* file;
    std::map<std::string, int64_t> params;
    int64_t total;
  };
  for (const Case& c :
       {Case{"simple_lstm/simple_lstm_tf_keras_1_model.h5",
             {{"lstm_1", 10400}, {"dense_1", 51}},
             10451},
        Case{"conv1d/conv1d_k3_s1_d1_cf_same_model.h5", {{"conv0_channels_last", 40}}, 40}}) {
    CAPTURE(c.file);
    const ImportedModel m =
        import_keras_model(test::source_path(std::string("tests/data/keras/") + c.file));
    const auto graph = compile_graph(load_graph_string(format_imported_yaml(m)), builtin_ops());
    const Summary s = summarize(graph, {});
    CHECK(s.total_params == c.total);
    for (const SummaryRow& row : s.rows)
      if (c.params.count(row.node)) CHECK(row.params == c.params.at(row.node));
  }
}
