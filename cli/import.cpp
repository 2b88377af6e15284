// graph-runner import MODEL --graph OUT.yaml --weights OUT.safetensors: a Keras model file into a
// FusionGraph graph and its weights (docs/import.md). Nothing is written on an error.
#include <fmt/format.h>

#include <fusiongraph/import.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"

namespace fg::cli {
namespace {

struct ImportOptions {
  std::string model, graph, weights;
  std::string weights_h5;  // with a JSON config as `model`
};

int cmd_import(const ImportOptions& o) {
  check_file_destination(o.graph, "--graph");
  check_file_destination(o.weights, "--weights");
  const ImportedModel model = o.weights_h5.empty() ? import_keras_model(o.model)
                                                   : import_keras_config(o.model, o.weights_h5);
  write_imported_model(model, o.graph, o.weights);
  int64_t params = 0;
  for (const auto& [name, t] : model.weights.tensors()) params += static_cast<int64_t>(t.size());
  std::cout << fmt::format(
      "imported {} (Keras {}): {} nodes, {} weight tensors ({} parameters)\n"
      "wrote {} and {}\n",
      o.model, model.keras_version.empty() ? "?" : model.keras_version, model.graph->nodes.size(),
      model.weights.tensors().size(), group_digits(params), o.graph, o.weights);
  return 0;
}

}  // namespace

Command add_import_command(CLI::App& app) {
  auto o = std::make_shared<ImportOptions>();
  auto* c = app.add_subcommand("import",
                               "Convert a Keras model file into a YAML graph and "
                               "safetensors weights")
                ->footer(
                    "Example:\n  graph-runner import model.h5 --graph model.yaml --weights "
                    "model.safetensors\n"
                    "  graph-runner import model.json --weights-h5 model.weights.h5 --graph "
                    "model.yaml --weights model.safetensors\n"
                    "Formats: Keras 3 .keras, legacy HDF5 .h5 (Keras 1.x, 2.x, tf.keras), a TF.js "
                    "layers model (model.json with its weight shards), a JSON config "
                    "(model.to_json()) with a weights-only .h5 (save_weights). Layers "
                    "and limits: "
                    "docs/import.md.\nExit status: 0 imported, 1 an error (nothing written), 2 "
                    "bad usage.");
  c->add_option("model", o->model,
                "Keras model file (.keras or .h5), a TF.js model.json, or a JSON config with "
                "--weights-h5")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--weights-h5", o->weights_h5,
                "Weights-only HDF5 file (model.save_weights) for the JSON config MODEL")
      ->check(CLI::ExistingFile);
  c->add_option("--graph", o->graph, "Output YAML graph")->required();
  c->add_option("--weights", o->weights, "Output .safetensors weights")->required();
  return {c, [o] { return cmd_import(*o); }};
}

}  // namespace fg::cli
