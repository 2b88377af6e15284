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

struct ConfigLayer {
  keras::Layer layer;
  std::vector<std::string> inbound;  // the layers whose outputs it reads (functional models)
};

Error config_error(const std::string& file, const std::string& message) {
  Error e(fmt::format("model_config: {}", message));
  e.in_file(file);
  return e;
}

// One inbound tensor reference: Keras 1/2 [name, node, tensor, kwargs?], Keras 3
// {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}.
std::string inbound_name(const json& ref, const keras::Layer& l, const std::string& file) {
  const json* h = &ref;
  if (ref.is_object() && ref.contains("config") && ref["config"].contains("keras_history"))
    h = &ref["config"]["keras_history"];
  if (!h->is_array() || h->size() < 3 || !(*h)[0].is_string())
    throw config_error(file,
                       fmt::format("layer '{}': unreadable inbound node {}", l.name, ref.dump()));
  if ((*h)[1] != 0 || (*h)[2] != 0)
    throw config_error(
        file, fmt::format("layer '{}' reads output {} of call {} of layer '{}': "
                          "shared layers and multi-output layers are not "
                          "supported yet",
                          l.name, (*h)[2].dump(), (*h)[1].dump(), (*h)[0].get<std::string>()));
  return (*h)[0].get<std::string>();
}

std::vector<std::string> inbound_of(const json& layer_json, const keras::Layer& l,
                                    const std::string& file) {
  std::vector<std::string> names;
  auto it = layer_json.find("inbound_nodes");
  if (it == layer_json.end() || it->empty()) return names;
  if (!it->is_array())
    throw config_error(file, fmt::format("layer '{}': bad inbound_nodes", l.name));
  if (it->size() > 1)
    throw config_error(file, fmt::format("layer '{}' ({}) is called {} times: shared layers are "
                                         "not supported yet",
                                         l.name, l.class_name, it->size()));
  const json& call = (*it)[0];
  const json& args = call.is_object() ? call.value("args", json::array()) : call;
  for (const json& ref : args) {
    if (ref.is_array() && !ref.empty() && ref[0].is_object()) {  // Keras 3: a list of tensors
      for (const json& r : ref) names.push_back(inbound_name(r, l, file));
    } else {
      names.push_back(inbound_name(ref, l, file));
    }
  }
  return names;
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
    c.inbound = inbound_of(j, c.layer, file);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<std::string> endpoint_names(const json& list, const std::string& key,
                                        const std::string& file) {
  std::vector<std::string> names;
  if (!list.is_array()) throw config_error(file, fmt::format("'{}' is not a list", key));
  // [[name, 0, 0], ...], or one [name, 0, 0]
  if (list.size() >= 1 && list[0].is_string()) return {list[0].get<std::string>()};
  for (const json& e : list) {
    if (!e.is_array() || e.empty() || !e[0].is_string())
      throw config_error(file, fmt::format("'{}' holds {}", key, e.dump()));
    names.push_back(e[0].get<std::string>());
  }
  return names;
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

  void functional(const json& config, const std::vector<ConfigLayer>& layers) {
    std::map<std::string, std::string> produced;  // Keras layer -> node holding its output
    for (const ConfigLayer& c : layers) {
      if (c.layer.class_name == "InputLayer") {
        add_input(c.layer, c.layer.name);
        produced[c.layer.name] = c.layer.name;
        continue;
      }
      std::vector<std::string> in;
      for (const std::string& src : c.inbound) {
        auto it = produced.find(src);
        if (it == produced.end())
          throw config_error(file_, fmt::format("layer '{}' reads '{}', which is not "
                                                "defined before it",
                                                c.layer.name, src));
        in.push_back(it->second);
      }
      produced[c.layer.name] = convert(c.layer, in);
    }
    for (const std::string& out :
         endpoint_names(config.value("output_layers", json::array()), "output_layers", file_)) {
      auto it = produced.find(out);
      if (it == produced.end())
        throw config_error(file_, fmt::format("unknown output layer '{}'", out));
      model_.graph->outputs.push_back(it->second);
    }
  }

 private:
  std::string convert(const keras::Layer& l, const std::vector<std::string>& in) {
    const size_t first = model_.graph->nodes.size();
    std::string out = keras::convert_layer(builder_, l, in, weights_(l));
    for (size_t i = first; i < model_.graph->nodes.size(); ++i)
      model_.node_origin[model_.graph->nodes[i].name] =
          fmt::format("layer '{}' ({})", l.name, l.class_name);
    return out;
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
