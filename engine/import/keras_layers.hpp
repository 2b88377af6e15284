// The per-class conversion of Keras layers into FusionGraph nodes (engine/import/): what
// import_keras_model calls for each layer of a config, with the layer's inputs already
// converted. Internal to the importer.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/import/hdf5_file.hpp"
#include "engine/import/keras_import.hpp"
#include "framework/error.hpp"
#include "kernels/tensor.hpp"

namespace fg::keras {

struct Layer {
  std::string class_name, name;
  nlohmann::json config;
};

// What a converter builds into: the model, and the layer's weights in its weight_names order.
class Builder {
 public:
  Builder(ImportedModel& model, int keras_major) : model_(model), keras_major_(keras_major) {}

  int keras_major() const { return keras_major_; }
  const std::string& backend() const { return model_.backend; }  // the file's, "" when unknown
  Error error(const Layer& layer, const std::string& message) const;
  // Adds a node reading `inputs`; returns it for its attributes.
  NodeDef& add_node(const std::string& name, const std::string& op,
                    const std::vector<std::string>& inputs);
  void comment(const std::string& node, const std::string& text);
  // Makes the model input `input` int32 (the ids an Embedding looks up); an error naming
  // `layer` when `input` is not a model input.
  void make_ids_input(const Layer& layer, const std::string& input);
  void set_weight(const std::string& node, const std::string& param, Tensor t);
  // The nodes built so far (to see what feeds a layer, e.g. whether its input carries a mask).
  const GraphDef& graph() const { return *model_.graph; }

 private:
  ImportedModel& model_;
  int keras_major_;
};

// Attribute values (written only where they differ from the op's default).
void set_int(NodeDef& node, const std::string& key, int64_t value);
void set_float(NodeDef& node, const std::string& key, double value);
void set_string(NodeDef& node, const std::string& key, const std::string& value);
void set_bool(NodeDef& node, const std::string& key, bool value);
void set_ints(NodeDef& node, const std::string& key, const std::vector<int64_t>& values);

// Converts one layer reading the node outputs `inputs`; returns the name of the node whose
// output is the layer's output. `weights` are the layer's arrays in weight_names order.
std::string convert_layer(Builder& b, const Layer& layer, const std::vector<std::string>& inputs,
                          std::vector<Tensor> weights);

// Keras 1's Convolution1D / Convolution2D (keras1_convolution.cpp): the layer as Keras 2's
// Conv1D / Conv2D, and its weights in Keras 2's layout (Keras 2's loader's rules: kernels
// transposed from 'th' ordering, flipped when the file's backend is Theano, refused when the
// file does not record it).
Layer keras1_convolution_as_keras2(const Builder& b, const Layer& l);
std::vector<Tensor> keras1_convolution_weights(const Builder& b, const Layer& l,
                                               std::vector<Tensor> w);

// The per-sample input shape a layer declares (batch_input_shape, batch_shape, input_shape or
// input_dim), or false when it declares none.
bool declared_input_shape(const Layer& layer, Dims& shape);

// A layer's weight arrays in its weight order, from wherever the format keeps them.
using WeightSource = std::function<std::vector<Tensor>(const Layer&)>;
// Reads a Keras model config (JSON text: Sequential, Model, Functional; Keras 1 to 3) into
// model.graph, the weights through `weights`. model.keras_version must be set.
void read_model_config(const std::string& text, const std::string& file, ImportedModel& model,
                       const WeightSource& weights);
// Compiles the graph and checks every weight against its op's shape (keras_model.cpp).
void check_imported_model(ImportedModel& model);
// Keras 3 `.keras` archives (keras_archive.cpp).
bool is_zip_file(const std::string& path);
// A Keras 3 weights file (model.weights.h5 in a .keras zip, or save_weights' .weights.h5):
// layers/<snake_case class>[_N]/vars/<i>; the weights of the config's layers from it. `h5`
// must outlive the source.
bool is_keras3_weights_file(const Hdf5File& h5);
WeightSource keras3_weights(const Hdf5File& h5, const std::string& config_text);
void read_keras_archive(const std::string& path, ImportedModel& model);

}  // namespace fg::keras
