// Keras 3 `.keras` files: a zip of config.json (the model config), metadata.json
// (keras_version) and model.weights.h5. The weights file is organised by object path, not by
// layer name (keras/src/saving/saving_lib.py, _save_container_state): the model's layers sit
// under `layers/`, each named by its class in snake case, numbered in model order within the
// class (`dense`, `dense_1`, ...; `re_lu` for ReLU); a layer's variables are the datasets
// `vars/0`, `vars/1`, ... (ordered numerically: 0, 1, 2, ..., 10), a recurrent layer's under
// `cell/vars`, a Bidirectional's under `forward_layer/cell/vars` and `backward_layer/cell/vars`.
// tf.keras 2.13 wrote `_layer_checkpoint_dependencies/` instead of `layers/`.
#include <fmt/format.h>
#include <zip.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "engine/import/hdf5_file.hpp"
#include "engine/import/keras_layers.hpp"

namespace fg::keras {
namespace {

constexpr uint64_t kMaxArchiveEntryBytes = uint64_t{4} << 30;

using ZipPtr = std::unique_ptr<zip_t, decltype(&zip_discard)>;

ZipPtr open_zip(const std::string& path) {
  int err = 0;
  ZipPtr z(zip_open(path.c_str(), ZIP_RDONLY, &err), zip_discard);
  if (!z) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    Error e(fmt::format("cannot read the .keras archive: {}", zip_error_strerror(&ze)));
    zip_error_fini(&ze);
    throw e.in_file(path);
  }
  return z;
}

// The entry's bytes; nullopt-like empty flag when absent.
bool read_entry(zip_t* z, const std::string& path, const std::string& name,
                std::vector<unsigned char>& out) {
  zip_stat_t st;
  if (zip_stat(z, name.c_str(), 0, &st) != 0) return false;
  if (!(st.valid & ZIP_STAT_SIZE) || st.size > kMaxArchiveEntryBytes)
    throw Error(fmt::format("the entry '{}' is too large or unreadable", name)).in_file(path);
  std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen(z, name.c_str(), 0), zip_fclose);
  if (!f) throw Error(fmt::format("cannot open the entry '{}'", name)).in_file(path);
  out.resize(static_cast<size_t>(st.size));
  if (zip_fread(f.get(), out.data(), out.size()) != static_cast<zip_int64_t>(out.size()))
    throw Error(fmt::format("the entry '{}' is truncated or corrupt", name)).in_file(path);
  return true;
}

// keras.src.utils.naming.to_snake_case
std::string to_snake_case(const std::string& name) {
  std::string s = std::regex_replace(name, std::regex("\\W+"), "");
  s = std::regex_replace(s, std::regex("(.)([A-Z][a-z]+)"), "$1_$2");
  s = std::regex_replace(s, std::regex("([a-z])([A-Z])"), "$1_$2");
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_recurrent(const std::string& cls) {
  return cls == "LSTM" || cls == "GRU" || cls == "SimpleRNN";
}

// The weights-file group of every layer of the config, in model order.
std::map<std::string, std::string> layer_groups(const nlohmann::json& config,
                                                const std::string& prefix) {
  std::map<std::string, std::string> groups;
  std::map<std::string, int> used;
  const nlohmann::json& body = config.value("config", nlohmann::json::object());
  const bool sequential = config.value("class_name", std::string()) == "Sequential";
  for (const nlohmann::json& l : body.value("layers", nlohmann::json::array())) {
    const std::string cls = l.value("class_name", std::string());
    if (sequential && cls == "InputLayer") continue;  // not among Sequential.layers
    std::string name = to_snake_case(cls);
    auto it = used.find(name);
    if (it == used.end())
      used[name] = 0;
    else
      name += "_" + std::to_string(++it->second);
    const nlohmann::json& c = l.value("config", nlohmann::json::object());
    groups[c.value("name", l.value("name", std::string()))] = prefix + "/" + name;
  }
  return groups;
}

// vars/<i> in numeric order.
std::vector<Tensor> group_vars(const Hdf5File& h5, const std::string& group, const Layer& l) {
  std::vector<std::pair<long, std::string>> keys;
  for (const std::string& k : h5.children(group + "/vars")) {
    char* end = nullptr;
    const long i = std::strtol(k.c_str(), &end, 10);
    if (k.empty() || *end != '\0')
      throw Error(fmt::format("layer '{}' ({}): unexpected variable '{}/vars/{}'", l.name,
                              l.class_name, group, k))
          .in_file(h5.path());
    keys.emplace_back(i, k);
  }
  std::sort(keys.begin(), keys.end());
  std::vector<Tensor> out;
  for (const auto& [i, k] : keys) out.push_back(h5.float_dataset(group + "/vars/" + k));
  return out;
}

// A Bidirectional's variables: its forward_layer's (under cell/ for a recurrent layer), then its
// backward_layer's; a missing direction contributes none (the converter then names the count).
std::vector<Tensor> bidirectional_vars(const Hdf5File& h5, const std::string& group,
                                       const Layer& l) {
  std::vector<Tensor> out;
  for (const char* direction : {"/forward_layer", "/backward_layer"}) {
    std::string inner = group + direction;
    if (!h5.has_group(inner)) continue;
    if (h5.has_group(inner + "/cell")) inner += "/cell";
    for (Tensor& t : group_vars(h5, inner, l)) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

bool is_keras3_weights_file(const Hdf5File& h5) {
  return h5.has_group("layers") || h5.has_group("_layer_checkpoint_dependencies");
}

WeightSource keras3_weights(const Hdf5File& h5, const std::string& config_text) {
  const std::string prefix =
      h5.has_group("layers") || !h5.has_group("_layer_checkpoint_dependencies")
          ? "layers"
          : "_layer_checkpoint_dependencies";
  const auto config = nlohmann::json::parse(config_text, nullptr, false);
  const auto groups =
      config.is_object() ? layer_groups(config, prefix) : std::map<std::string, std::string>{};
  return [&h5, groups](const Layer& l) {
    auto it = groups.find(l.name);
    if (it == groups.end() || !h5.has_group(it->second)) return std::vector<Tensor>{};
    // a recurrent layer's variables are its cell's, a wrapper's (TimeDistributed) its layer's
    std::string group = it->second;
    if (is_recurrent(l.class_name) && h5.has_group(group + "/cell"))
      group += "/cell";
    else if (l.class_name == "TimeDistributed" && h5.has_group(group + "/layer"))
      group += "/layer";
    if (l.class_name == "Bidirectional") return bidirectional_vars(h5, group, l);
    return group_vars(h5, group, l);
  };
}

bool is_zip_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char head[4] = {0, 0, 0, 0};
  const size_t n = std::fread(head, 1, 4, f);
  std::fclose(f);
  return n == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
}

void read_keras_archive(const std::string& path, ImportedModel& model) {
  ZipPtr z = open_zip(path);
  std::vector<unsigned char> config_bytes, metadata_bytes, weights_bytes;
  if (!read_entry(z.get(), path, "config.json", config_bytes))
    throw Error("the .keras archive has no config.json").in_file(path);
  if (read_entry(z.get(), path, "metadata.json", metadata_bytes)) {
    const auto meta = nlohmann::json::parse(metadata_bytes, nullptr, false);
    if (meta.is_object()) model.keras_version = meta.value("keras_version", std::string());
  }
  if (model.keras_version.empty()) model.keras_version = "3";
  if (!read_entry(z.get(), path, "model.weights.h5", weights_bytes))
    throw Error("the .keras archive has no model.weights.h5").in_file(path);
  const std::string text(config_bytes.begin(), config_bytes.end());
  const Hdf5File h5(path + ":model.weights.h5", weights_bytes);
  read_model_config(text, path + ":config.json", model, keras3_weights(h5, text));
}

}  // namespace fg::keras
