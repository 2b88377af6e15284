// TensorFlow.js layers models (tensorflowjs_converter --output_format tfjs_layers_model, or
// model.save() in TF.js): a `model.json` {"format": "layers-model", "modelTopology": <a Keras
// model config>, "weightsManifest": [{"paths": [shard files], "weights": [{"name", "shape",
// "dtype", "quantization"?}]}]} beside its binary weight shards. The topology goes through the
// Keras config reader (keras_model.cpp); the weights are bound to the layers by name, as TF.js
// binds them (docs/import.md). Internal to the importer.
#pragma once

#include <cstdint>
#include <string>

#include "engine/import/keras_import.hpp"

namespace fg::tfjs {

// Whether `path` is a TF.js model.json: a JSON object with a "format" of TF.js, a
// "weightsManifest" or a "modelTopology" (or, when it does not parse, text naming them, so that
// a truncated model.json still gets TF.js's error messages). Cheap on other files: only a file
// whose first non-blank byte is '{' is read.
bool is_tfjs_model_json(const std::string& path);

// Reads a TF.js layers model and its shards into a checked ImportedModel (as
// import_keras_model). Throws fg::Error naming the file, the weight and both sides of any
// mismatch (a missing shard, shards that do not add up to the manifest, a missing weight, one
// of the wrong shape, an unknown dtype).
ImportedModel import_tfjs_model(const std::string& path);

// IEEE 754 binary16 bits to float (TF.js's float16 quantization); exact for every value.
float float16_to_float(uint16_t bits);

}  // namespace fg::tfjs
