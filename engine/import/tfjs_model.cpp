// TF.js layers models: model.json and its weight shards (see tfjs_model.hpp). The format's rules,
// from tfjs-converter (write_weights.py, keras_h5_conversion.py) and tfjs-core / tfjs-layers
// (io weight decoding, Container.loadWeights):
// - modelTopology is the Keras model config {"class_name", "config", "keras_version",
//   "backend"} (TF.js's own model.save()), or {"model_config": <that>, "training_config",
//   "keras_version", "backend"} (the converter from a Keras .h5);
// - each manifest group's weights are stored back to back, in manifest order, in the bytes of
//   the group's shard files concatenated in `paths` order (shards split anywhere, even inside a
//   weight); a weight takes prod(shape) elements of its stored dtype: float32 / int32 (4 bytes),
//   or its quantization dtype: uint8 (1), uint16 (2), float16 (2);
// - dequantized value = q * scale + min (rounded for an int32 weight), float16 widened;
// - a weight is named "<layer>/<variable>" ("lstm/lstm_cell/kernel" in newer converters,
//   "lstm/kernel" in older ones, "dense/0" from Keras 3): its layer is the first segment, and a
//   layer's weights come in the manifest order, which is the layer's weight order (Keras's
//   weight_names, as the legacy .h5 binding uses).
// TF.js runs every layer with its own kernels, which follow Keras 2 (hard_sigmoid is
// clip(0.2x + 0.5, 0, 1), LSTM's recurrent_activation defaults to it), whatever keras_version
// the topology records: the config is read with Keras 2's meanings.
#include "engine/import/tfjs_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "engine/import/keras_layers.hpp"
#include "framework/compiler.hpp"
#include "layers/registry.hpp"

namespace fg::tfjs {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxModelJsonBytes = uint64_t{256} << 20;  // 256 MiB of topology
constexpr uint64_t kMaxGroupBytes = uint64_t{4} << 30;        // one group's shards, 4 GiB

struct Quantization {
  std::string dtype;  // uint8, uint16, float16
  double scale = 1, min = 0;
};

struct ManifestWeight {
  std::string name, dtype;  // dtype: the weight's own (float32, int32)
  Dims shape;
  std::optional<Quantization> quantization;
  size_t group = 0;   // index in weightsManifest
  int64_t bytes = 0;  // as stored in the shards
  Tensor value;       // float32, decoded
};

struct Group {
  std::vector<std::string> paths;  // as written in the manifest
  std::vector<size_t> weights;     // indices into the weight list, in order
};

Error manifest_error(const std::string& file, const std::string& message) {
  Error e(fmt::format("weightsManifest: {}", message));
  e.in_file(file);
  return e;
}

std::string weight_label(const ManifestWeight& w) {
  std::string stored = w.quantization ? w.quantization->dtype + "-quantized " + w.dtype : w.dtype;
  return fmt::format("'{}' {} {}", w.name, format_shape(w.shape), stored);
}

std::optional<std::string> read_small_file(const std::string& path, uint64_t limit) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > limit) return std::nullopt;
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::string text(static_cast<size_t>(size), '\0');
  if (!f.read(text.data(), static_cast<std::streamsize>(text.size()))) return std::nullopt;
  return text;
}

bool first_nonblank_is_brace(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char c = 0;
  while (f.get(c))
    if (!std::isspace(static_cast<unsigned char>(c))) return c == '{';
  return false;
}

// Bytes per stored element; 0 for a dtype TF.js layers weights do not use.
int64_t element_bytes(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "uint16" || dtype == "float16") return 2;
  if (dtype == "uint8") return 1;
  return 0;
}

Dims read_shape(const json& entry, const std::string& name, const std::string& file) {
  const json& shape = entry.value("shape", json());
  if (!shape.is_array())
    throw manifest_error(file, fmt::format("the weight '{}' has no shape list", name));
  Dims dims;
  for (const json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      throw manifest_error(file, fmt::format("the weight '{}' has the shape {}: dims must be "
                                             "integers >= 0",
                                             name, shape.dump()));
    dims.push_back(d.get<int64_t>());
  }
  return dims;
}

std::optional<Quantization> read_quantization(const json& entry, const std::string& name,
                                              const std::string& dtype, const std::string& file) {
  auto it = entry.find("quantization");
  if (it == entry.end() || it->is_null()) return std::nullopt;
  Quantization q;
  q.dtype = it->value("dtype", std::string());
  if (q.dtype != "uint8" && q.dtype != "uint16" && q.dtype != "float16")
    throw manifest_error(file, fmt::format("the weight '{}' has the quantization dtype '{}'; "
                                           "TF.js quantizes to uint8, uint16 or float16",
                                           name, it->value("dtype", json()).dump()));
  if (q.dtype == "float16") {
    if (dtype != "float32")
      throw manifest_error(file, fmt::format("the weight '{}' is float16-quantized {}: float16 "
                                             "holds float32 weights only",
                                             name, dtype));
    return q;
  }
  const json& scale = it->value("scale", json());
  const json& min = it->value("min", json());
  if (!scale.is_number() || !min.is_number())
    throw manifest_error(file, fmt::format("the {}-quantized weight '{}' lacks a numeric scale "
                                           "and min (found {})",
                                           q.dtype, name, it->dump()));
  q.scale = scale.get<double>();
  q.min = min.get<double>();
  return q;
}

ManifestWeight read_weight_entry(const json& entry, size_t group, const std::string& file) {
  if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string())
    throw manifest_error(file, fmt::format("group {}: a weight without a name: {}", group + 1,
                                           entry.dump().substr(0, 200)));
  ManifestWeight w;
  w.name = entry["name"].get<std::string>();
  w.group = group;
  w.dtype = entry.value("dtype", std::string("float32"));
  if (w.dtype != "float32" && w.dtype != "int32")
    throw manifest_error(file, fmt::format("the weight '{}' has the dtype '{}': supported are "
                                           "float32 and int32, plain or quantized (uint8, "
                                           "uint16, float16)",
                                           w.name, entry.value("dtype", json()).dump()));
  w.shape = read_shape(entry, w.name, file);
  w.quantization = read_quantization(entry, w.name, w.dtype, file);
  const int64_t elements =
      check_tensor_size(w.shape, DType::f32, fmt::format("the weight '{}'", w.name)) / 4;
  w.bytes = elements * element_bytes(w.quantization ? w.quantization->dtype : w.dtype);
  return w;
}

void read_manifest(const json& manifest, const std::string& file, std::vector<Group>& groups,
                   std::vector<ManifestWeight>& weights) {
  if (!manifest.is_array()) throw manifest_error(file, "not a list of weight groups");
  std::set<std::string> names;
  for (size_t g = 0; g < manifest.size(); ++g) {
    const json& entry = manifest[g];
    const json& paths = entry.is_object() ? entry.value("paths", json()) : json();
    const json& list = entry.is_object() ? entry.value("weights", json()) : json();
    if (!paths.is_array() || !list.is_array())
      throw manifest_error(file, fmt::format("group {} has no 'paths' and 'weights' lists", g + 1));
    Group group;
    for (const json& p : paths) {
      if (!p.is_string() || p.get<std::string>().empty())
        throw manifest_error(
            file, fmt::format("group {}: the shard path {} is not a file name", g + 1, p.dump()));
      group.paths.push_back(p.get<std::string>());
    }
    for (const json& w : list) {
      ManifestWeight mw = read_weight_entry(w, g, file);
      if (!names.insert(mw.name).second)
        throw manifest_error(file, fmt::format("the weight '{}' is listed twice", mw.name));
      group.weights.push_back(weights.size());
      weights.push_back(std::move(mw));
    }
    groups.push_back(std::move(group));
  }
}

// The group's shards concatenated; a missing shard or sizes that do not add up to the weights
// are errors naming the files and both byte counts.
std::vector<unsigned char> read_group_bytes(const Group& group, size_t index,
                                            const std::vector<ManifestWeight>& weights,
                                            const std::filesystem::path& dir,
                                            const std::string& file) {
  uint64_t need = 0;
  for (size_t w : group.weights) need += static_cast<uint64_t>(weights[w].bytes);
  uint64_t have = 0;
  std::vector<std::pair<std::string, uint64_t>> sizes;
  for (const std::string& p : group.paths) {
    const std::filesystem::path shard = dir / p;
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(shard, ec);
    if (ec || !std::filesystem::is_regular_file(shard))
      throw Error(fmt::format("the weight shard '{}' (weightsManifest group {}) is missing: no "
                              "file {}",
                              p, index + 1, shard.string()))
          .in_file(file)
          .hint("keep the shard files listed in model.json's weightsManifest beside it");
    sizes.emplace_back(p, size);
    have += size;
  }
  if (have != need) {
    std::string shard_list, weight_list;
    for (const auto& [p, size] : sizes)
      shard_list += fmt::format("{}{} {} bytes", shard_list.empty() ? "" : ", ", p, size);
    for (size_t i = 0; i < group.weights.size() && i < 6; ++i) {
      const ManifestWeight& w = weights[group.weights[i]];
      weight_list +=
          fmt::format("{}{} = {} bytes", weight_list.empty() ? "" : ", ", weight_label(w), w.bytes);
    }
    if (group.weights.size() > 6)
      weight_list += fmt::format(", and {} more", group.weights.size() - 6);
    throw Error(fmt::format("weightsManifest group {}: its shards hold {} bytes ({}), its {} "
                            "weights need {} bytes ({})",
                            index + 1, have, shard_list.empty() ? "no shards" : shard_list,
                            group.weights.size(), need, weight_list))
        .in_file(file)
        .hint(have < need ? "a shard is truncated or missing from 'paths'"
                          : "a shard has extra bytes, or a weight is missing from the manifest");
  }
  if (need > kMaxGroupBytes)
    throw Error(fmt::format("weightsManifest group {} holds {} bytes, more than the {} read",
                            index + 1, need, kMaxGroupBytes))
        .in_file(file);
  std::vector<unsigned char> bytes(static_cast<size_t>(need));
  size_t at = 0;
  for (const std::string& p : group.paths) {
    std::ifstream f(dir / p, std::ios::binary);
    const auto size = static_cast<std::streamsize>(std::filesystem::file_size(dir / p));
    if (!f || !f.read(reinterpret_cast<char*>(bytes.data() + at), size))
      throw Error(fmt::format("cannot read the weight shard '{}'", p)).in_file((dir / p).string());
    at += static_cast<size_t>(size);
  }
  return bytes;
}

template <typename T>
T load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // TF.js writes little-endian, as the hosts we build for are
  return v;
}

Tensor decode_weight(const ManifestWeight& w, const unsigned char* p) {
  Tensor t(DType::f32, w.shape);
  float* out = t.mutable_data<float>();
  const size_t n = t.size();
  const bool integer = w.dtype == "int32";
  if (!w.quantization) {
    for (size_t i = 0; i < n; ++i)
      out[i] =
          integer ? static_cast<float>(load_le<int32_t>(p + 4 * i)) : load_le<float>(p + 4 * i);
    return t;
  }
  const Quantization& q = *w.quantization;
  for (size_t i = 0; i < n; ++i) {
    if (q.dtype == "float16") {
      out[i] = float16_to_float(load_le<uint16_t>(p + 2 * i));
      continue;
    }
    const double v = q.dtype == "uint8" ? p[i] : load_le<uint16_t>(p + 2 * i);
    const double x = v * q.scale + q.min;
    out[i] = static_cast<float>(integer ? std::floor(x + 0.5) : x);  // JavaScript's Math.round
  }
  return t;
}

void decode_weights(const std::vector<Group>& groups, std::vector<ManifestWeight>& weights,
                    const std::string& file) {
  const std::filesystem::path dir = std::filesystem::path(file).parent_path();
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::vector<unsigned char> bytes = read_group_bytes(groups[g], g, weights, dir, file);
    size_t at = 0;
    for (size_t w : groups[g].weights) {
      weights[w].value = decode_weight(weights[w], bytes.data() + at);
      at += static_cast<size_t>(weights[w].bytes);
    }
  }
}

// The layer part of "<layer>/<variable>"; empty when the name has no '/'.
std::string layer_of(const std::string& name) {
  const size_t slash = name.find('/');
  return slash == std::string::npos || slash == 0 ? "" : name.substr(0, slash);
}

// Keras 3 names a layer's weights "<layer>/0", "<layer>/1", ...: then their index is the order.
void order_numbered(std::vector<size_t>& list, const std::vector<ManifestWeight>& weights) {
  std::vector<std::pair<long, size_t>> keyed;
  for (size_t w : list) {
    const std::string& name = weights[w].name;
    const std::string last = name.substr(name.rfind('/') + 1);
    char* end = nullptr;
    const long i = std::strtol(last.c_str(), &end, 10);
    if (last.empty() || *end != '\0') return;
    keyed.emplace_back(i, w);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < list.size(); ++i) list[i] = keyed[i].second;
}

// Binds the manifest's weights to the config's layers by name and remembers which were used.
class WeightBinder {
 public:
  explicit WeightBinder(std::vector<ManifestWeight>& weights) : weights_(weights) {
    for (size_t i = 0; i < weights_.size(); ++i) by_layer_[layer_of(weights_[i].name)].push_back(i);
    for (auto& [layer, list] : by_layer_) order_numbered(list, weights_);
  }

  std::vector<Tensor> operator()(const keras::Layer& l) {
    current_ = l.name;
    layers_.push_back(l.name);
    std::vector<Tensor> out;
    auto it = by_layer_.find(l.name);
    if (it == by_layer_.end()) return out;
    used_.insert(l.name);
    for (size_t w : it->second) {
      out.push_back(weights_[w].value);
      origin_[weights_[w].value.raw()] = w;
    }
    return out;
  }

  const std::string& current_layer() const { return current_; }

  // Weights of no layer of `config_layers` whose layer part starts with `layer`
  // ("conv0_4/kernel" for the layer conv0: a .h5 whose weight_names kept another name).
  std::vector<std::string> lookalikes(const std::string& layer,
                                      const std::set<std::string>& config_layers) const {
    std::vector<std::string> out;
    for (const auto& [prefix, list] : by_layer_)
      if (!config_layers.count(prefix) && prefix.rfind(layer, 0) == 0)
        for (size_t w : list) out.push_back(weights_[w].name);
    return out;
  }

  // "'dense/kernel' (16, 32) float32, ..." for a layer, or "none".
  std::string listing(const std::string& layer) const {
    auto it = by_layer_.find(layer);
    if (it == by_layer_.end()) return "none";
    std::string s;
    for (size_t w : it->second) s += (s.empty() ? "" : ", ") + weight_label(weights_[w]);
    return s;
  }

  // Weights no layer of the model took (TF.js's strict loadWeights refuses them as well).
  void check_all_used(const std::string& file) const {
    std::vector<std::string> orphans;
    for (const auto& [layer, list] : by_layer_)
      if (!used_.count(layer))
        for (size_t w : list) orphans.push_back(weights_[w].name);
    if (orphans.empty()) return;
    const size_t shown = std::min<size_t>(orphans.size(), 4);
    std::vector<std::string> head(orphans.begin(), orphans.begin() + shown);
    throw manifest_error(
        file, fmt::format(
                  "{}{} name{} no layer of the model: a weight is named "
                  "'<layer name>/<variable>' (the model's layers: {})",
                  quoted_list(head),
                  orphans.size() > shown ? fmt::format(" and {} more", orphans.size() - shown) : "",
                  orphans.size() == 1 ? "s" : "", quoted_list(layers_)))
        .hint(
            "TF.js binds weights by these names too, and refuses such a file ('Provided "
            "weight data has no target variable'); rename the weights to their layers");
  }

  // The manifest weight a stored tensor came from (shared storage), if it is one unchanged.
  const ManifestWeight* origin(const Tensor& t) const {
    auto it = origin_.find(t.raw());
    return it == origin_.end() || weights_[it->second].value.shape() != t.shape()
               ? nullptr
               : &weights_[it->second];
  }

 private:
  std::vector<ManifestWeight>& weights_;
  std::map<std::string, std::vector<size_t>> by_layer_;
  std::set<std::string> used_;
  std::vector<std::string> layers_;
  std::map<const void*, size_t> origin_;
  std::string current_;
};

// Each weight against its op's shape, naming the manifest entry (before the generic check, which
// names the layer and the op's parameter only).
void check_manifest_shapes(const ImportedModel& model, const WeightBinder& binder) {
  const CompiledGraph graph = compile_graph(model.graph, builtin_ops());
  for (const auto& [key, spec] : graph.all_weights()) {
    const Tensor* t = model.weights.find(key);
    if (!t || t->shape() == spec.shape) continue;
    const ManifestWeight* w = binder.origin(*t);
    if (!w) continue;
    const std::string node = key.substr(0, key.rfind('.'));
    auto origin = model.node_origin.find(node);
    std::string op = "?";
    for (const NodeDef& n : model.graph->nodes)
      if (n.name == node) op = n.op;
    throw Error(
        fmt::format("{}: the weightsManifest's '{}' has the shape {}; the {} op expects "
                    "{} for its '{}' (node '{}')",
                    origin == model.node_origin.end() ? "node '" + node + "'" : origin->second,
                    w->name, format_shape(w->shape), op, format_shape(spec.shape), spec.param,
                    node))
        .in_file(model.source);
  }
}

// modelTopology: the Keras config itself, or {"model_config": ..., "keras_version", ...}.
json model_config_of(const json& topology, ImportedModel& model, const std::string& file) {
  if (!topology.is_object()) throw Error("modelTopology is missing or not an object").in_file(file);
  auto string_of = [](const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  json config = topology.contains("model_config") ? topology["model_config"] : topology;
  if (config.is_string()) config = json::parse(config.get<std::string>(), nullptr, false);
  if (!config.is_object() || !config.contains("class_name"))
    throw Error("modelTopology holds no Keras model config (no class_name)").in_file(file);
  model.keras_version = string_of(topology, "keras_version");
  if (model.keras_version.empty()) model.keras_version = string_of(config, "keras_version");
  model.backend = string_of(topology, "backend");
  if (model.backend.empty()) model.backend = string_of(config, "backend");
  return config;
}

json parse_model_json(const std::string& path) {
  const auto text = read_small_file(path, kMaxModelJsonBytes);
  if (!text)
    throw Error("cannot read the TF.js model.json (missing or over 256 MiB)").in_file(path);
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    try {
      const json reparsed = json::parse(*text);  // throws, with the position of the fault
    } catch (const json::parse_error& e) {
      throw Error(fmt::format("model.json is not valid JSON (truncated?): {}", e.what()))
          .in_file(path);
    }
    throw Error("model.json is not a JSON object").in_file(path);
  }
  return j;
}

void check_format(const json& j, const std::string& path) {
  const std::string format = j.value("format", std::string("layers-model"));
  if (format == "graph-model")
    throw Error(
        "a TF.js graph model (format 'graph-model') holds a TensorFlow graph, not Keras "
        "layers: only layers models import")
        .in_file(path)
        .hint(
            "convert the Keras model with tensorflowjs_converter --output_format "
            "tfjs_layers_model");
  if (format != "layers-model")
    throw Error(fmt::format("unknown TF.js model format '{}' (layers-model imports)", format))
        .in_file(path);
  if (!j.contains("weightsManifest"))
    throw Error("model.json has no weightsManifest: the weights are not described").in_file(path);
}

// The names of the config's layers (Sequential: Keras 1 / 2.0 write the list as the config).
std::set<std::string> layer_names(const json& config) {
  std::set<std::string> names;
  const json& body = config.value("config", json());
  const json& layers = body.is_array() ? body : body.value("layers", json::array());
  if (!layers.is_array()) return names;
  for (const json& l : layers) {
    const json& c = l.is_object() ? l.value("config", json::object()) : json::object();
    const json& name = l.is_object() && l.contains("name") ? l["name"] : c.value("name", json());
    if (name.is_string()) names.insert(name.get<std::string>());
  }
  return names;
}

// Reads the topology with the manifest's weights; a layer's weight-count error gets the weights
// the manifest holds for it as a hint.
void read_topology(const json& config, const std::string& path, ImportedModel& model,
                   WeightBinder& binder) {
  const std::string recorded = model.keras_version;
  model.keras_version = "2";  // TF.js's layers mean what Keras 2's do (see the top)
  try {
    keras::read_model_config(config.dump(), path, model, std::ref(binder));
  } catch (Error& e) {
    const std::string& layer = binder.current_layer();
    const auto lookalikes = binder.lookalikes(layer, layer_names(config));
    if (!layer.empty() && e.hint_text().empty() &&
        e.message().rfind(fmt::format("layer '{}' ", layer), 0) == 0 &&
        e.message().find("weight") != std::string::npos)
      e.hint(fmt::format("model.json's weightsManifest holds for layer '{}': {} (named '{}/...', "
                         "in the layer's weight order)",
                         layer, binder.listing(layer), layer) +
             (lookalikes.empty() ? ""
                                 : fmt::format("; {} name no layer of the model: this one's "
                                               "under another name?",
                                               quoted_list(lookalikes))));
    throw;
  }
  model.keras_version = recorded;
}

}  // namespace

float float16_to_float(uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero and subnormals
  else if (exponent == 31)
    magnitude =
        mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else
    magnitude = std::ldexp(static_cast<float>(mantissa + 1024), exponent - 25);
  return sign ? -magnitude : magnitude;
}

bool is_tfjs_model_json(const std::string& path) {
  if (!first_nonblank_is_brace(path)) return false;
  const auto text = read_small_file(path, kMaxModelJsonBytes);
  if (!text) return false;
  const json j = json::parse(*text, nullptr, false);
  if (j.is_discarded())
    return text->find("\"weightsManifest\"") != std::string::npos ||
           text->find("\"layers-model\"") != std::string::npos;
  if (!j.is_object()) return false;
  const std::string format =
      j.value("format", json()).is_string() ? j["format"].get<std::string>() : std::string();
  return format == "layers-model" || format == "graph-model" || j.contains("weightsManifest") ||
         j.contains("modelTopology");
}

ImportedModel import_tfjs_model(const std::string& path) {
  ImportedModel model;
  model.source = path;
  model.graph = std::make_shared<GraphDef>();
  model.graph->file = path;
  model.weights.set_source(path);
  const json j = parse_model_json(path);
  check_format(j, path);
  std::vector<Group> groups;
  std::vector<ManifestWeight> weights;
  read_manifest(j["weightsManifest"], path, groups, weights);
  const json config = model_config_of(j.value("modelTopology", json()), model, path);
  decode_weights(groups, weights, path);
  WeightBinder binder(weights);
  read_topology(config, path, model, binder);
  binder.check_all_used(path);
  const std::string by =
      j.value("convertedBy", json()).is_string()   ? j["convertedBy"].get<std::string>()
      : j.value("generatedBy", json()).is_string() ? j["generatedBy"].get<std::string>()
                                                   : std::string();
  model.header.push_back(
      fmt::format("Imported from the TF.js layers model {} (Keras {}{}{}) by graph-runner import.",
                  path, model.keras_version.empty() ? "?" : model.keras_version,
                  model.backend.empty() ? "" : ", backend " + model.backend,
                  by.empty() ? "" : ", written by " + by));
  if (config.dump().find("\"hard_sigmoid\"") != std::string::npos)
    model.header.push_back(
        "hard_sigmoid as TF.js computes it, Keras 2's clip(0.2x + 0.5, 0, 1), whatever the "
        "Keras version.");
  check_manifest_shapes(model, binder);
  keras::check_imported_model(model);
  return model;
}

}  // namespace fg::tfjs
