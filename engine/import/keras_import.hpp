// Keras model import: a model file -> a GraphDef (Keras layer names as node names, input layer
// names as input names) and a WeightStore in the ops' Keras layouts, then a person-readable
// YAML graph and a safetensors file. Formats today: legacy HDF5 `.h5` from model.save() (Keras
// 1.x, 2.x, tf.keras: the `model_config` attribute and `model_weights/`) and Keras 3 `.keras`
// zips (engine/import/keras_archive.cpp). docs/import.md lists
// the layers and what is not supported (each an fg::Error naming the layer, its class and why).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/weights.hpp"
#include "framework/graph_def.hpp"

namespace fg {

struct ImportedModel {
  std::shared_ptr<GraphDef> graph;
  WeightStore weights;  // "<node>.<param>", Keras layouts
  std::string source;   // the model file
  std::string keras_version, backend;
  // Comments the YAML carries: above the graph, above a node (what the importer changed, e.g.
  // a layer split into several nodes, a data format converted) and beside an input.
  std::vector<std::string> header;
  std::map<std::string, std::vector<std::string>> node_comments;
  std::map<std::string, std::string> input_comments;
  // node -> "layer 'conv0' (Conv1D)": the Keras layer a node comes from, for messages.
  std::map<std::string, std::string> node_origin;
};

// Reads a Keras model file (the format is recognised from its contents) and checks the result:
// the graph compiles and every weight has the shape its op expects. Throws fg::Error naming
// the layer, its Keras class and why for anything it cannot import.
ImportedModel import_keras_model(const std::string& path);
// A model saved as a JSON config (model.to_json()) and a weights-only HDF5 file
// (model.save_weights(): Keras 1/2 and tf.keras's `layer_names` / `weight_names` layout, or
// Keras 3's `.weights.h5` with `layers/<class>/vars`). Checked as import_keras_model.
ImportedModel import_keras_config(const std::string& config_path, const std::string& weights_path);

// The graph as YAML: attributes only where they differ from the op's defaults, the comments.
std::string format_imported_yaml(const ImportedModel& model);

// Writes the YAML and the safetensors after checking both destinations and that the YAML reads
// back into a graph that compiles with the weights; each file atomically. On an error nothing
// is written (the weights go to a temporary beside their destination until the YAML is in
// place).
void write_imported_model(const ImportedModel& model, const std::string& graph_path,
                          const std::string& weights_path);

}  // namespace fg
