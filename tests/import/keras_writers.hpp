// Keras files written at test time by the formats' rules, through the HDF5 C API and libzip:
//   - legacy HDF5 (Keras 1/2, tf.keras): model.save() puts the JSON `model_config` at the root
//     and the weights under `model_weights/<layer>/`, each layer group listing its arrays in
//     the `weight_names` attribute (fixed-length strings, as h5py writes numpy 'S' arrays);
//     model.save_weights() writes the same layer groups at the root (keras/engine/saving.py,
//     save_weights_to_hdf5_group);
//   - Keras 3: model.weights.h5 with `layers/<snake_case class>[_N]/vars/<i>`, zipped with
//     config.json and metadata.json into a `.keras` file (keras/src/saving/saving_lib.py).
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <zip.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/tensor.hpp"

namespace fg::test {

inline hid_t link_creation_with_parents() {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  return lcpl;
}

inline void write_f32_dataset(hid_t where, const std::string& name, const Tensor& t) {
  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t lcpl = link_creation_with_parents();
  hid_t d = H5Dcreate2(where, name.c_str(), H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d >= 0);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data<float>());
  H5Dclose(d);
  H5Pclose(lcpl);
  H5Sclose(s);
}

inline void write_string_attribute(hid_t where, const std::string& name, const std::string& text) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, std::max<size_t>(text.size(), 1));
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(where, name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, text.data());
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

// A fixed-length string array attribute (h5py's numpy 'S' arrays: layer_names, weight_names).
inline void write_string_list_attribute(hid_t where, const std::string& name,
                                        const std::vector<std::string>& items) {
  size_t width = 1;
  for (const auto& i : items) width = std::max(width, i.size());
  std::vector<char> bytes(width * std::max<size_t>(items.size(), 1), '\0');
  for (size_t i = 0; i < items.size(); ++i)
    std::copy(items[i].begin(), items[i].end(), bytes.begin() + i * width);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, width);
  const hsize_t n = items.size();
  hid_t s = n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL);
  hid_t a = H5Acreate2(where, name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT);
  if (n) H5Awrite(a, t, bytes.data());
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

// One layer's weights as Keras 2 names them ("kernel:0", ...), in the layer's weight order.
using LayerWeights = std::vector<std::pair<std::string, Tensor>>;

// Writes the layer groups (layer_names at `root`, weight_names per group; the datasets at
// <layer>/<layer>/<weight> as Keras 2 does).
inline void write_legacy_layers(hid_t root, const std::vector<std::string>& layer_names,
                                const std::map<std::string, LayerWeights>& weights) {
  write_string_list_attribute(root, "layer_names", layer_names);
  for (const std::string& layer : layer_names) {
    hid_t g = H5Gcreate2(root, layer.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<std::string> names;
    auto it = weights.find(layer);
    if (it != weights.end())
      for (const auto& [name, t] : it->second) {
        names.push_back(layer + "/" + name);
        write_f32_dataset(g, layer + "/" + name, t);
      }
    write_string_list_attribute(g, "weight_names", names);
    H5Gclose(g);
  }
}

// model.save("model.h5") of Keras 2: `layer_names` lists every layer (InputLayers too). An
// empty `backend` writes no backend attribute (as Keras 1.2 did).
inline void write_legacy_model(const std::string& path, const std::string& model_config,
                               const std::vector<std::string>& layer_names,
                               const std::map<std::string, LayerWeights>& weights,
                               const std::string& keras_version = "2.3.1",
                               const std::string& backend = "tensorflow") {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  write_string_attribute(f, "keras_version", keras_version);
  if (!backend.empty()) write_string_attribute(f, "backend", backend);
  write_string_attribute(f, "model_config", model_config);
  hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  write_legacy_layers(mw, layer_names, weights);
  H5Gclose(mw);
  H5Fclose(f);
}

// model.save_weights("w.h5") of Keras 2: the same layer groups at the root, no model_config.
inline void write_legacy_weights(const std::string& path,
                                 const std::vector<std::string>& layer_names,
                                 const std::map<std::string, LayerWeights>& weights) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  write_string_attribute(f, "keras_version", "2.3.1");
  write_string_attribute(f, "backend", "tensorflow");
  write_legacy_layers(f, layer_names, weights);
  H5Fclose(f);
}

// Keras 3 weights: `arrays` ("layers/dense/vars/0" -> tensor) and the empty groups `groups`.
inline void write_weights_h5(const std::string& path, const std::map<std::string, Tensor>& arrays,
                             const std::vector<std::string>& groups) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t lcpl = link_creation_with_parents();
  for (const std::string& g : groups)
    H5Gclose(H5Gcreate2(f, g.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT));
  H5Pclose(lcpl);
  for (const auto& [name, t] : arrays) write_f32_dataset(f, name, t);
  H5Fclose(f);
}

inline void write_keras_zip(const std::string& path, const std::string& config,
                            const std::string& weights_h5, bool with_config = true) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  REQUIRE(z != nullptr);
  static const std::string metadata =
      R"({"keras_version": "3.3.3", "date_saved": "2024-05-01@12:00:00"})";
  auto add_text = [&](const char* name, const std::string& text) {
    zip_source_t* s = zip_source_buffer(z, text.data(), text.size(), 0);
    REQUIRE(zip_file_add(z, name, s, ZIP_FL_OVERWRITE) >= 0);
  };
  add_text("metadata.json", metadata);
  if (with_config) add_text("config.json", config);
  zip_source_t* s = zip_source_file(z, weights_h5.c_str(), 0, -1);
  REQUIRE(zip_file_add(z, "model.weights.h5", s, ZIP_FL_OVERWRITE) >= 0);
  REQUIRE(zip_close(z) == 0);
}

}  // namespace fg::test
