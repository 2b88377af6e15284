// Legacy HDF5 Keras models (model.save("model.h5"), Keras 1.x / 2.x, tf.keras): the JSON
// `model_config` root attribute read into layers and their connections, the weights from
// `model_weights/<layer>/` bound by position in each layer group's `weight_names` attribute.
#include <fmt/format.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/import/hdf5_file.hpp"
#include "engine/import/keras_import.hpp"
#include "engine/import/keras_layers.hpp"
#include "engine/import/tfjs_model.hpp"
#include "framework/compiler.hpp"
#include "layers/registry.hpp"

namespace fg {
namespace {

using json = nlohmann::json;

// One tensor a layer call reads: output `tensor` (always 0: multi-output layers are refused)
// of call `call` of `layer` (Keras's node_index: a shared layer's calls are numbered 0, 1, ...).
struct TensorRef {
  std::string layer;
  int64_t call = 0;
};

struct ConfigLayer {
  keras::Layer layer;
  // Per call of the layer (its inbound_nodes, in order): the tensors it reads. A layer called
  // more than once (a shared layer) has several; an InputLayer none.
  std::vector<std::vector<TensorRef>> calls;
};

Error config_error(const std::string& file, const std::string& message) {
  Error e(fmt::format("model_config: {}", message));
  e.in_file(file);
  return e;
}

// One inbound tensor reference: Keras 1/2 [name, node, tensor, kwargs?], Keras 3
// {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}.
TensorRef inbound_ref(const json& ref, const keras::Layer& l, const std::string& file) {
  const json* h = &ref;
  if (ref.is_object() && ref.contains("config") && ref["config"].contains("keras_history"))
    h = &ref["config"]["keras_history"];
  if (!h->is_array() || h->size() < 3 || !(*h)[0].is_string() || !(*h)[1].is_number_integer() ||
      (*h)[1].get<int64_t>() < 0 || !(*h)[2].is_number_integer())
    throw config_error(file,
                       fmt::format("layer '{}': unreadable inbound node {}", l.name, ref.dump()));
  if ((*h)[2] != 0)
    throw config_error(
        file, fmt::format("layer '{}' reads output {} of layer '{}': multi-output layers are not "
                          "supported yet",
                          l.name, (*h)[2].dump(), (*h)[0].get<std::string>()));
  return {(*h)[0].get<std::string>(), (*h)[1].get<int64_t>()};
}

// The tensors one call reads: Keras 1/2 [[name, node, tensor, kwargs], ...], Keras 3
// {"args": [tensor, ...]} (a merge layer's args hold one list of tensors).
std::vector<TensorRef> call_inputs(const json& call, const keras::Layer& l,
                                   const std::string& file) {
  std::vector<TensorRef> refs;
  const json& args = call.is_object() ? call.value("args", json::array()) : call;
  if (!args.is_array())
    throw config_error(file, fmt::format("layer '{}': bad inbound node {}", l.name, call.dump()));
  for (const json& ref : args) {
    if (ref.is_array() && !ref.empty() && ref[0].is_object()) {  // Keras 3: a list of tensors
      for (const json& r : ref) refs.push_back(inbound_ref(r, l, file));
    } else {
      refs.push_back(inbound_ref(ref, l, file));
    }
  }
  return refs;
}

std::vector<std::vector<TensorRef>> inbound_of(const json& layer_json, const keras::Layer& l,
                                               const std::string& file) {
  std::vector<std::vector<TensorRef>> calls;
  auto it = layer_json.find("inbound_nodes");
  if (it == layer_json.end() || it->empty()) return calls;
  if (!it->is_array())
    throw config_error(file, fmt::format("layer '{}': bad inbound_nodes", l.name));
  for (const json& call : *it) calls.push_back(call_inputs(call, l, file));
  return calls;
}

std::vector<ConfigLayer> read_layers(const json& layers, const std::string& file) {
  if (!layers.is_array()) throw config_error(file, "'layers' is not a list");
  std::vector<ConfigLayer> out;
  for (const json& j : layers) {
    if (!j.is_object() || !j.contains("class_name") || !j["class_name"].is_string() ||
        !j.contains("config") || !j["config"].is_object())
      throw config_error(
          file, fmt::format("a layer without class_name and config: {}", j.dump().substr(0, 200)));
    ConfigLayer c;
    c.layer.class_name = j["class_name"].get<std::string>();
    c.layer.config = j["config"];
    const json& name = j.contains("name") ? j["name"] : c.layer.config.value("name", json());
    if (!name.is_string())
      throw config_error(file, fmt::format("a {} layer without a name", c.layer.class_name));
    c.layer.name = name.get<std::string>();
    c.calls = inbound_of(j, c.layer, file);
    out.push_back(std::move(c));
  }
  return out;
}

// output_layers: [[name, node, tensor], ...], or one [name, node, tensor].
std::vector<TensorRef> endpoint_refs(const json& list, const std::string& key,
                                     const std::string& file) {
  if (!list.is_array()) throw config_error(file, fmt::format("'{}' is not a list", key));
  auto ref = [&](const json& e) {
    if (!e.is_array() || e.empty() || !e[0].is_string() ||
        (e.size() > 1 && !e[1].is_number_integer()))
      throw config_error(file, fmt::format("'{}' holds {}", key, e.dump()));
    return TensorRef{e[0].get<std::string>(), e.size() > 1 ? e[1].get<int64_t>() : 0};
  };
  if (!list.empty() && list[0].is_string()) return {ref(list)};
  std::vector<TensorRef> refs;
  for (const json& e : list) refs.push_back(ref(e));
  return refs;
}

std::string describe(const TensorRef& r) {
  return r.call == 0 ? fmt::format("'{}'", r.layer)
                     : fmt::format("call {} of '{}'", r.call, r.layer);
}

// The layer's weight arrays in weight_names order, from model_weights/<layer>/.
std::vector<Tensor> layer_weights(const Hdf5File& h5, const std::string& root,
                                  const keras::Layer& l) {
  const std::string group = root.empty() ? l.name : root + "/" + l.name;
  std::vector<Tensor> out;
  if (!h5.has_group(group)) return out;
  for (const std::string& w : h5.string_list_attribute(group, "weight_names")) {
    const std::string path = group + "/" + w;
    if (!h5.has_dataset(path))
      throw Error(fmt::format("layer '{}' ({}): the weight '{}' listed in weight_names is "
                              "missing (no dataset '{}')",
                              l.name, l.class_name, w, path))
          .in_file(h5.path());
    out.push_back(h5.float_dataset(path));
  }
  return out;
}

class GraphReader {
 public:
  GraphReader(const std::string& file, keras::WeightSource weights, ImportedModel& model, int major)
      : file_(file), weights_(std::move(weights)), model_(model), builder_(model, major) {}

  void sequential(const std::vector<ConfigLayer>& layers) {
    std::string current;
    for (size_t i = 0; i < layers.size(); ++i) {
      const keras::Layer& l = layers[i].layer;
      if (l.class_name == "InputLayer") {
        add_input(l, l.name);
        current = l.name;
        continue;
      }
      if (current.empty()) {
        const std::string name = l.name + "_input";  // Keras 2's name for the implicit input
        add_input(l, name);
        current = name;
      }
      current = convert(l, {current});
    }
    if (current.empty()) throw config_error(file_, "the Sequential model has no layers");
    model_.graph->outputs = {current};
  }

  // Keras's own order (functional.py's from_config): the layers in config order, each one's
  // calls in order as soon as the tensors they read exist; a call waiting for a later layer
  // is taken up on the next sweep.
  void functional(const json& config, const std::vector<ConfigLayer>& layers) {
    for (const ConfigLayer& c : layers) taken_names_.insert(c.layer.name);
    std::vector<size_t> next_call(layers.size(), 0);
    for (bool progress = true; progress;) {
      progress = false;
      for (size_t i = 0; i < layers.size(); ++i)
        while (next_call[i] < call_count(layers[i]) && ready(layers[i], next_call[i])) {
          add_call(layers[i], next_call[i]++);
          progress = true;
        }
    }
    for (size_t i = 0; i < layers.size(); ++i)
      if (next_call[i] < call_count(layers[i])) throw unresolved(layers[i], next_call[i]);
    for (const TensorRef& out :
         endpoint_refs(config.value("output_layers", json::array()), "output_layers", file_)) {
      auto it = produced_.find({out.layer, out.call});
      if (it == produced_.end())
        throw config_error(file_, fmt::format("unknown output layer {}", describe(out)));
      model_.graph->outputs.push_back(it->second);
    }
  }

 private:
  // `weights_from`: the layer whose weights the source holds (a shared layer's later calls
  // are converted under another name).
  std::string convert(const keras::Layer& l, const std::vector<std::string>& in,
                      const keras::Layer* weights_from = nullptr) {
    const size_t first = model_.graph->nodes.size();
    std::string out =
        keras::convert_layer(builder_, l, in, weights_(weights_from ? *weights_from : l));
    for (size_t i = first; i < model_.graph->nodes.size(); ++i)
      model_.node_origin[model_.graph->nodes[i].name] =
          fmt::format("layer '{}' ({})", l.name, l.class_name);
    return out;
  }

  // A layer's calls; a layer without inbound nodes (an InputLayer) is taken once, with no
  // inputs (a converter then reports what it misses).
  static size_t call_count(const ConfigLayer& c) { return c.calls.empty() ? 1 : c.calls.size(); }

  bool ready(const ConfigLayer& c, size_t call) const {
    if (c.calls.empty()) return true;
    for (const TensorRef& r : c.calls[call])
      if (!produced_.count({r.layer, r.call})) return false;
    return true;
  }

  Error unresolved(const ConfigLayer& c, size_t call) const {
    for (const TensorRef& r : c.calls[call])
      if (!produced_.count({r.layer, r.call}))
        return config_error(
            file_, fmt::format("layer '{}'{} reads {}, which is not defined in "
                               "the model",
                               c.layer.name, call == 0 ? "" : fmt::format(" (call {})", call),
                               describe(r)));
    return config_error(file_, fmt::format("layer '{}' cannot be placed", c.layer.name));
  }

  void add_call(const ConfigLayer& c, size_t call) {
    const std::string& name = c.layer.name;
    if (c.layer.class_name == "InputLayer") {
      add_input(c.layer, name);
      produced_[{name, 0}] = name;
      return;
    }
    std::vector<std::string> in;
    if (!c.calls.empty())
      for (const TensorRef& r : c.calls[call]) in.push_back(produced_.at({r.layer, r.call}));
    const int64_t index = static_cast<int64_t>(call);
    if (call == 0) {
      const size_t first = model_.graph->nodes.size();
      produced_[{name, 0}] = convert(c.layer, in);
      for (size_t i = first; i < model_.graph->nodes.size(); ++i)
        first_call_nodes_[name].push_back(model_.graph->nodes[i].name);
    } else {
      produced_[{name, index}] = convert_shared_call(c.layer, call, in);
    }
  }

  // Call `call` (1, 2, ...) of a shared layer: the layer converted again under a fresh name
  // (`<layer>_<call>`), each node with weights taking those of call 0's node
  // (`weights_of`), the copy's weights dropped: the model holds them once, as Keras does.
  std::string convert_shared_call(const keras::Layer& l, size_t call,
                                  const std::vector<std::string>& in) {
    keras::Layer copy = l;
    copy.name = fresh_call_name(l.name, call);
    const size_t first = model_.graph->nodes.size();
    const std::string out = convert(copy, in, &l);
    const std::vector<std::string>& owners = first_call_nodes_.at(l.name);
    if (model_.graph->nodes.size() - first != owners.size())
      throw builder_.error(l, "internal: a second call converted into other nodes than the first");
    for (size_t k = 0; k < owners.size(); ++k) {
      NodeDef& node = model_.graph->nodes[first + k];
      model_.node_origin[node.name] =
          fmt::format("layer '{}' ({}), call {}", l.name, l.class_name, call);
      if (!drop_weights(node.name)) continue;
      node.weights_of = owners[k];
      node.weights_of_loc.file = model_.source;
      builder_.comment(node.name,
                       fmt::format("call {} of the shared layer '{}': the weights are {}'s "
                                   "(one set, as in Keras)",
                                   call, l.name, owners[k]));
    }
    return out;
  }

  // `<layer>_<call>`, or `<layer>_call<call>` when a layer of the model has that name.
  std::string fresh_call_name(const std::string& layer, size_t call) {
    std::string name = fmt::format("{}_{}", layer, call);
    for (int extra = 0; taken_names_.count(name); ++extra)
      name = fmt::format("{}_call{}{}", layer, call, extra ? fmt::format("_{}", extra) : "");
    taken_names_.insert(name);
    return name;
  }

  // Removes the weights "<node>.*" the converter set; whether there were any.
  bool drop_weights(const std::string& node) {
    std::vector<std::string> keys;
    for (const auto& [key, tensor] : model_.weights.tensors())
      if (key.rfind(node + ".", 0) == 0) keys.push_back(key);
    for (const std::string& key : keys) model_.weights.erase(key);
    return !keys.empty();
  }

  void add_input(const keras::Layer& l, const std::string& name) {
    InputDef input;
    input.name = name;
    input.loc.file = model_.source;
    if (!keras::declared_input_shape(l, input.shape))
      throw builder_.error(l, "the model's input shape is not declared (no batch_input_shape)");
    // Keras 3 writes a DTypePolicy dict; integer inputs are the ids of an Embedding, which
    // makes the input int32 itself
    const json& dtype = l.config.value("dtype", json("float32"));
    if (dtype.is_string() && dtype != "float32" && dtype != "int32" && dtype != "int64")
      throw builder_.error(l, fmt::format("input dtype {} is not supported (float32, or int32 "
                                          "ids for an Embedding)",
                                          dtype.get<std::string>()));
    for (const char* key : {"batch_input_shape", "batch_shape"})
      if (l.config.contains(key) && l.config[key].is_array() && !l.config[key].empty() &&
          l.config[key][0].is_number_integer())
        model_.input_comments[name] = fmt::format("Keras fixed the batch to {}; any batch runs",
                                                  l.config[key][0].get<int64_t>());
    model_.graph->inputs.push_back(std::move(input));
  }

  std::string file_;
  keras::WeightSource weights_;
  ImportedModel& model_;
  keras::Builder builder_;
  std::map<std::pair<std::string, int64_t>, std::string> produced_;   // (layer, call) -> node
  std::map<std::string, std::vector<std::string>> first_call_nodes_;  // layer -> call 0's nodes
  std::set<std::string> taken_names_;                                 // the model's layer names
};

int major_version(const std::string& version) {
  return version.empty() ? 2 : std::atoi(version.c_str());
}

void read_hdf5_model(const Hdf5File& h5, ImportedModel& model) {
  const auto config_text = h5.string_attribute("/", "model_config");
  if (!config_text) {
    if (h5.has_attribute("/", "layer_names") || keras::is_keras3_weights_file(h5))
      throw Error("a weights-only HDF5 file (model.save_weights): the model config is not in it")
          .in_file(h5.path())
          .hint(fmt::format("import the model's JSON config (model.to_json()) with these "
                            "weights: graph-runner import model.json --weights-h5 {} ...",
                            h5.path()));
    throw Error("no 'model_config' attribute: not a Keras model file").in_file(h5.path());
  }
  model.keras_version = h5.string_attribute("/", "keras_version").value_or("");
  model.backend = h5.string_attribute("/", "backend").value_or("");
  keras::read_model_config(*config_text, h5.path(), model, [&](const keras::Layer& l) {
    return layer_weights(h5, "model_weights", l);
  });
}

std::string node_op(const ImportedModel& model, const std::string& node) {
  for (const NodeDef& n : model.graph->nodes)
    if (n.name == node) return n.op;
  return "?";
}

// Each weight against the shape its op expects, naming the layer.
void check_weight_shapes(const ImportedModel& model, const CompiledGraph& graph) {
  for (const auto& [key, spec] : graph.all_weights()) {
    const Tensor* t = model.weights.find(key);
    const std::string node = key.substr(0, key.rfind('.'));
    auto origin = model.node_origin.find(node);
    const std::string who =
        origin == model.node_origin.end() ? fmt::format("node '{}'", node) : origin->second;
    if (!t)
      throw Error(
          fmt::format("{}: the weight '{}' is missing from the model file", who, spec.param))
          .in_file(model.source);
    if (t->shape() != spec.shape)
      throw Error(fmt::format("{}: the weight '{}' in the file has the shape {}, the {} op "
                              "expects {}",
                              who, spec.param, format_shape(t->shape()), node_op(model, node),
                              format_shape(spec.shape)))
          .in_file(model.source);
  }
}

}  // namespace

namespace keras {

void read_model_config(const std::string& text, const std::string& file, ImportedModel& model,
                       const WeightSource& weights) {
  json config = json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object() || !config.contains("class_name"))
    throw config_error(file, "not a JSON object with a class_name");
  const std::string cls =
      config["class_name"].is_string() ? config["class_name"].get<std::string>() : "";
  const json& body = config.value("config", json());
  // Keras 1 and 2.0 write a Sequential config as the list of layers itself.
  const json& layers = body.is_array() ? body : body.value("layers", json());
  model.graph->name = body.is_object() ? body.value("name", std::string("model")) : "model";
  GraphReader reader(file, weights, model, major_version(model.keras_version));
  if (cls == "Sequential")
    reader.sequential(read_layers(layers, file));
  else if (cls == "Model" || cls == "Functional")
    reader.functional(body, read_layers(layers, file));
  else
    throw config_error(file, fmt::format("model class '{}' is not supported (Sequential, "
                                         "Model and Functional are): a subclassed model "
                                         "saved without a config cannot be imported",
                                         cls));
}

void check_imported_model(ImportedModel& model) {
  const CompiledGraph graph = compile_graph(model.graph, builtin_ops());
  check_weight_shapes(model, graph);
  model.weights.validate(graph);
}

}  // namespace keras

namespace {

ImportedModel empty_model(const std::string& path) {
  ImportedModel model;
  model.source = path;
  model.graph = std::make_shared<GraphDef>();
  model.graph->file = path;
  model.weights.set_source(path);
  return model;
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open the file").in_file(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// to_json() writes keras_version and backend in Keras 2; the weights file's attributes else.
std::string json_string_or(const json& config, const char* key, const std::string& fallback) {
  auto it = config.find(key);
  return it != config.end() && it->is_string() ? it->get<std::string>() : fallback;
}

bool starts_like_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char c = 0;
  while (f.get(c))
    if (!std::isspace(static_cast<unsigned char>(c))) return c == '{';
  return false;
}

}  // namespace

ImportedModel import_keras_config(const std::string& config_path, const std::string& weights_path) {
  ImportedModel model = empty_model(config_path);
  const std::string text = read_text_file(config_path);
  const json config = json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object())
    throw Error("not a JSON model config (model.to_json())").in_file(config_path);
  const Hdf5File h5(weights_path);
  if (h5.has_attribute("/", "model_config"))
    throw Error("this is a whole model file (model.save), not a weights-only file")
        .in_file(weights_path)
        .hint(fmt::format("import it alone: graph-runner import {} ...", weights_path));
  model.keras_version = json_string_or(config, "keras_version",
                                       h5.string_attribute("/", "keras_version").value_or(""));
  model.backend =
      json_string_or(config, "backend", h5.string_attribute("/", "backend").value_or(""));
  if (keras::is_keras3_weights_file(h5)) {
    if (model.keras_version.empty()) model.keras_version = "3";
    keras::read_model_config(text, config_path, model, keras::keras3_weights(h5, text));
  } else if (h5.has_attribute("/", "layer_names")) {
    keras::read_model_config(text, config_path, model,
                             [&](const keras::Layer& l) { return layer_weights(h5, "", l); });
  } else {
    throw Error("not a Keras weights file (no layer_names attribute, no layers/ group)")
        .in_file(weights_path);
  }
  model.header.push_back(fmt::format(
      "Imported from {} with the weights of {} (Keras {}{}) by "
      "graph-runner import.",
      config_path, weights_path, model.keras_version.empty() ? "?" : model.keras_version,
      model.backend.empty() ? "" : ", backend " + model.backend));
  keras::check_imported_model(model);
  return model;
}

ImportedModel import_keras_model(const std::string& path) {
  if (tfjs::is_tfjs_model_json(path)) return tfjs::import_tfjs_model(path);  // tfjs_model.cpp
  ImportedModel model = empty_model(path);
  if (keras::is_zip_file(path)) {
    keras::read_keras_archive(path, model);
  } else if (starts_like_json(path)) {
    throw Error("a JSON model config: its weights are in a separate file")
        .in_file(path)
        .hint(fmt::format("name the weights-only HDF5 file: graph-runner import {} --weights-h5 "
                          "WEIGHTS.h5 ...",
                          path));
  } else {
    const Hdf5File h5(path);
    read_hdf5_model(h5, model);
  }
  model.header.push_back(fmt::format("Imported from {} (Keras {}{}) by graph-runner import.", path,
                                     model.keras_version.empty() ? "?" : model.keras_version,
                                     model.backend.empty() ? "" : ", backend " + model.backend));
  keras::check_imported_model(model);
  return model;
}

}  // namespace fg
