// The per-class Keras layer converters (see keras_layers.hpp). Keras 1 and Keras 2 / tf.keras
// spell some keys differently (output_dim / units, border_mode / padding, ...): each converter
// reads either.
#include "engine/import/keras_layers.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "framework/op.hpp"

namespace fg::keras {
namespace {

using json = nlohmann::json;

// The first of `keys` present and not null in the config, else nullptr.
const json* find_key(const Layer& layer, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = layer.config.find(k);
    if (it != layer.config.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

int64_t int_of(const Builder& b, const Layer& layer, std::initializer_list<const char*> keys,
               std::optional<int64_t> fallback = std::nullopt) {
  const json* v = find_key(layer, keys);
  if (!v) {
    if (fallback) return *fallback;
    throw b.error(layer, fmt::format("the config has no '{}'", *keys.begin()));
  }
  if (v->is_array() && v->size() == 1) v = &(*v)[0];
  if (!v->is_number_integer())
    throw b.error(layer, fmt::format("'{}' is {}, expected an integer", *keys.begin(), v->dump()));
  return v->get<int64_t>();
}

double float_of(const Builder& b, const Layer& layer, std::initializer_list<const char*> keys,
                double fallback) {
  const json* v = find_key(layer, keys);
  if (!v) return fallback;
  if (!v->is_number())
    throw b.error(layer, fmt::format("'{}' is {}, expected a number", *keys.begin(), v->dump()));
  return v->get<double>();
}

std::string string_of(const Builder& b, const Layer& layer, std::initializer_list<const char*> keys,
                      const std::string& fallback) {
  const json* v = find_key(layer, keys);
  if (!v) return fallback;
  if (!v->is_string())
    throw b.error(layer, fmt::format("'{}' is {}, expected a string", *keys.begin(), v->dump()));
  return v->get<std::string>();
}

bool bool_of(const Builder& b, const Layer& layer, std::initializer_list<const char*> keys,
             bool fallback) {
  const json* v = find_key(layer, keys);
  if (!v) return fallback;
  if (!v->is_boolean())
    throw b.error(layer,
                  fmt::format("'{}' is {}, expected true or false", *keys.begin(), v->dump()));
  return v->get<bool>();
}

// A Keras activation name our ops know; Keras 3 may write a dict {"class_name": ..}.
std::string activation_of(const Builder& b, const Layer& layer) {
  std::string name = string_of(b, layer, {"activation"}, "linear");
  for (const std::string& known : activation_names())
    if (known == name) return name;
  throw b.error(layer, fmt::format("activation '{}' is not supported", name))
      .hint(fmt::format("supported activations: {}", quoted_list(activation_names())));
}

void expect_weights(const Builder& b, const Layer& layer, const std::vector<Tensor>& w,
                    size_t count) {
  if (w.size() != count)
    throw b.error(layer, fmt::format("the file holds {} weight arrays for this layer, expected {}",
                                     w.size(), count));
}

void reject_true(const Builder& b, const Layer& layer, const char* key, const char* why) {
  if (bool_of(b, layer, {key}, false))
    throw b.error(layer, fmt::format("{}: true is not supported: {}", key, why));
}

std::string convert_dense(Builder& b, const Layer& l, const std::vector<std::string>& in,
                          std::vector<Tensor> w) {
  NodeDef& n = b.add_node(l.name, "dense", in);
  set_int(n, "units", int_of(b, l, {"units", "output_dim"}));
  const std::string act = activation_of(b, l);
  if (act != "linear") set_string(n, "activation", act);
  const bool bias = bool_of(b, l, {"use_bias", "bias"}, true);
  if (!bias) set_bool(n, "use_bias", false);
  expect_weights(b, l, w, bias ? 2 : 1);
  b.set_weight(l.name, "kernel", std::move(w[0]));
  if (bias) b.set_weight(l.name, "bias", std::move(w[1]));
  return l.name;
}

std::string convert_conv1d(Builder& b, const Layer& l, const std::vector<std::string>& in,
                           std::vector<Tensor> w) {
  if (l.class_name != "Conv1D")
    throw b.error(l, "the Keras 1 Convolution1D layer is not supported yet (Keras 2's Conv1D is)");
  const std::string format = string_of(b, l, {"data_format"}, "channels_last");
  const bool first = format == "channels_first";
  if (!first && format != "channels_last")
    throw b.error(l, fmt::format("data_format '{}' is not supported", format));
  if (int_of(b, l, {"groups"}, 1) != 1) throw b.error(l, "groups > 1 is not supported yet");
  const std::string conv = first ? l.name + "_channels_last" : l.name;
  std::vector<std::string> conv_in = in;
  if (first) {
    const std::string t = l.name + "_to_channels_last";
    set_ints(b.add_node(t, "permute", in), "dims", {2, 1});
    conv_in = {t};
    b.comment(t, fmt::format("{} (Conv1D, channels_first) runs channels-last: its input [channels, "
                             "steps] is transposed here, its output back in '{}'",
                             l.name, l.name));
  }
  NodeDef& n = b.add_node(conv, "conv1d", conv_in);
  set_int(n, "filters", int_of(b, l, {"filters"}));
  set_int(n, "kernel_size", int_of(b, l, {"kernel_size"}));
  if (int64_t s = int_of(b, l, {"strides"}, 1); s != 1) set_int(n, "strides", s);
  if (int64_t d = int_of(b, l, {"dilation_rate"}, 1); d != 1) set_int(n, "dilation_rate", d);
  const std::string padding = string_of(b, l, {"padding"}, "valid");
  if (padding != "valid") set_string(n, "padding", padding);
  std::string act = activation_of(b, l);
  // softmax acts on the last axis: for channels_first that is the steps axis, after the permute
  const bool act_after = first && (act == "softmax" || act == "log_softmax");
  if (act != "linear" && !act_after) set_string(n, "activation", act);
  const bool bias = bool_of(b, l, {"use_bias"}, true);
  if (!bias) set_bool(n, "use_bias", false);
  expect_weights(b, l, w, bias ? 2 : 1);
  b.set_weight(conv, "kernel", std::move(w[0]));
  if (bias) b.set_weight(conv, "bias", std::move(w[1]));
  if (!first) return l.name;
  const std::string back = act_after ? l.name + "_channels_first" : l.name;
  set_ints(b.add_node(back, "permute", {conv}), "dims", {2, 1});
  if (act_after) set_string(b.add_node(l.name, "activation", {back}), "activation", act);
  return l.name;
}

// Keras 1 LSTM weights (consume_less cpu / mem): W_i U_i b_i W_c U_c b_c W_f U_f b_f W_o U_o b_o;
// ours are the gates i, f, c, o concatenated along the last axis.
std::vector<Tensor> keras1_lstm_weights(const Builder& b, const Layer& l, std::vector<Tensor> w) {
  const int order[4] = {0, 2, 1, 3};  // i, f, c, o as positions in Keras 1's i, c, f, o
  std::vector<Tensor> out;
  for (int part = 0; part < 3; ++part) {  // W, U, b
    const Dims& shape = w[part].shape();
    const int64_t u = shape.back();
    Dims cat = shape;
    cat.back() = 4 * u;
    Tensor t(DType::f32, cat);
    const int64_t rows = static_cast<int64_t>(w[part].size()) / u;
    for (int g = 0; g < 4; ++g) {
      const Tensor& src = w[order[g] * 3 + part];
      if (src.shape() != shape)
        throw b.error(l, fmt::format("the Keras 1 gate weights differ in shape: {} and {}",
                                     format_shape(shape), format_shape(src.shape())));
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(t.mutable_data<float>() + r * 4 * u + g * u, src.data<float>() + r * u,
                    u * sizeof(float));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string convert_lstm(Builder& b, const Layer& l, const std::vector<std::string>& in,
                         std::vector<Tensor> w) {
  reject_true(b, l, "go_backwards", "the lstm op runs left to right only");
  reject_true(b, l, "stateful", "the lstm op starts every batch from a zero state");
  reject_true(b, l, "return_state", "the lstm op has one output");
  if (find_key(l, {"time_major"}) && bool_of(b, l, {"time_major"}, false))
    throw b.error(l, "time_major: true is not supported");
  NodeDef& n = b.add_node(l.name, "lstm", in);
  set_int(n, "units", int_of(b, l, {"units", "output_dim"}));
  if (bool_of(b, l, {"return_sequences"}, false)) set_bool(n, "return_sequences", true);
  const std::string act = string_of(b, l, {"activation"}, "tanh");
  const std::string rec = string_of(b, l, {"recurrent_activation", "inner_activation"},
                                    b.keras_major() >= 3 ? "sigmoid" : "hard_sigmoid");
  if (act != "tanh") set_string(n, "activation", act);
  if (rec != "sigmoid") set_string(n, "recurrent_activation", rec);
  if (rec == "hard_sigmoid" && b.keras_major() >= 3)
    throw b.error(l, "Keras 3's hard_sigmoid (x / 6 + 0.5) is not supported yet");
  const double dropout = float_of(b, l, {"dropout", "dropout_W"}, 0);
  const double rdrop = float_of(b, l, {"recurrent_dropout", "dropout_U"}, 0);
  if (dropout != 0) set_float(n, "dropout", dropout);
  if (rdrop != 0) set_float(n, "recurrent_dropout", rdrop);
  if (dropout != 0 || rdrop != 0)
    b.comment(l.name, "dropout only acts in training, which the lstm op refuses with a rate > 0");
  const bool bias = bool_of(b, l, {"use_bias"}, true);
  if (!bias) set_bool(n, "use_bias", false);
  if (w.size() == 12) {
    w = keras1_lstm_weights(b, l, std::move(w));
    b.comment(l.name,
              "Keras 1 weights: the 12 per-gate arrays concatenated in the gate order "
              "i, f, c, o");
  }
  expect_weights(b, l, w, bias ? 3 : 2);
  b.set_weight(l.name, "kernel", std::move(w[0]));
  b.set_weight(l.name, "recurrent_kernel", std::move(w[1]));
  if (bias) b.set_weight(l.name, "bias", std::move(w[2]));
  return l.name;
}

std::string convert_activation_layer(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                     std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  if (l.class_name == "Activation") {
    set_string(b.add_node(l.name, "activation", in), "activation", activation_of(b, l));
  } else if (l.class_name == "ReLU") {
    NodeDef& n = b.add_node(l.name, "relu", in);
    if (find_key(l, {"max_value"})) set_float(n, "max_value", float_of(b, l, {"max_value"}, 0));
    if (double s = float_of(b, l, {"negative_slope"}, 0); s != 0) set_float(n, "negative_slope", s);
    if (double t = float_of(b, l, {"threshold"}, 0); t != 0) set_float(n, "threshold", t);
  } else if (l.class_name == "LeakyReLU") {
    NodeDef& n = b.add_node(l.name, "leaky_relu", in);
    if (double s = float_of(b, l, {"negative_slope", "alpha"}, 0.3); s != 0.3)
      set_float(n, "negative_slope", s);
  } else if (l.class_name == "ELU") {
    NodeDef& n = b.add_node(l.name, "elu", in);
    if (double a = float_of(b, l, {"alpha"}, 1.0); a != 1.0) set_float(n, "alpha", a);
  } else if (l.class_name == "ThresholdedReLU") {
    NodeDef& n = b.add_node(l.name, "thresholded_relu", in);
    if (double t = float_of(b, l, {"theta"}, 1.0); t != 1.0) set_float(n, "theta", t);
  } else {  // Softmax
    const json* axis = find_key(l, {"axis"});
    if (axis && axis->is_array()) throw b.error(l, "a softmax over several axes is not supported");
    NodeDef& n = b.add_node(l.name, "softmax", in);
    if (int64_t a = int_of(b, l, {"axis"}, -1); a != -1) set_int(n, "axis", a);
  }
  return l.name;
}

std::string convert_shape_layer(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  if (l.class_name == "Flatten") {
    if (string_of(b, l, {"data_format"}, "channels_last") != "channels_last")
      throw b.error(l, "Flatten with data_format channels_first is not supported yet");
    b.add_node(l.name, "flatten", in);
  } else if (l.class_name == "Dropout") {
    NodeDef& n = b.add_node(l.name, "dropout", in);
    set_float(n, "rate", float_of(b, l, {"rate", "p"}, 0));
    if (find_key(l, {"noise_shape"}))
      throw b.error(l, "Dropout with a noise_shape is not supported by the importer yet");
    if (find_key(l, {"seed"})) set_int(n, "seed", int_of(b, l, {"seed"}));
  } else if (l.class_name == "Permute") {
    const json* dims = find_key(l, {"dims"});
    if (!dims || !dims->is_array()) throw b.error(l, "the config has no list 'dims'");
    set_ints(b.add_node(l.name, "permute", in), "dims", dims->get<std::vector<int64_t>>());
  } else {  // Reshape
    const json* t = find_key(l, {"target_shape"});
    if (!t || !t->is_array()) throw b.error(l, "the config has no list 'target_shape'");
    set_ints(b.add_node(l.name, "reshape", in), "target_shape", t->get<std::vector<int64_t>>());
  }
  return l.name;
}

using Converter = std::function<std::string(Builder&, const Layer&, const std::vector<std::string>&,
                                            std::vector<Tensor>)>;

const std::map<std::string, Converter>& converters() {
  static const std::map<std::string, Converter> table = {
      {"Dense", convert_dense},
      {"Conv1D", convert_conv1d},
      {"Convolution1D", convert_conv1d},
      {"LSTM", convert_lstm},
      {"Activation", convert_activation_layer},
      {"ReLU", convert_activation_layer},
      {"LeakyReLU", convert_activation_layer},
      {"ELU", convert_activation_layer},
      {"ThresholdedReLU", convert_activation_layer},
      {"Softmax", convert_activation_layer},
      {"Flatten", convert_shape_layer},
      {"Dropout", convert_shape_layer},
      {"Permute", convert_shape_layer},
      {"Reshape", convert_shape_layer},
  };
  return table;
}

// Why some well-known classes cannot be imported.
std::string unsupported_reason(const std::string& cls) {
  if (cls == "Lambda") return "a Lambda layer holds Python code, which cannot run outside Python";
  if (cls == "TFOpLambda" || cls == "SlicingOpLambda")
    return "a TensorFlow operation called on a Keras tensor holds Python code";
  if (cls == "Sequential" || cls == "Functional" || cls == "Model")
    return "nested models are not supported yet";
  return "no converter for this layer class";
}

std::string format_value(double v) {
  // the shortest text that reads back as the same float32 (Keras computes in float32)
  const float f = static_cast<float>(v);
  if (static_cast<double>(f) == v || std::fabs(v) < 1e30) return fmt::format("{}", f);
  return fmt::format("{}", v);
}

Value scalar(const std::string& text, bool quoted = false) {
  Value v;
  v.kind = Value::Kind::scalar;
  v.scalar = text;
  v.quoted = quoted;
  return v;
}

}  // namespace

Error Builder::error(const Layer& layer, const std::string& message) const {
  Error e(fmt::format("layer '{}' ({}): {}", layer.name, layer.class_name, message));
  e.in_file(model_.source);
  return e;
}

NodeDef& Builder::add_node(const std::string& name, const std::string& op,
                           const std::vector<std::string>& inputs) {
  NodeDef n;
  n.name = name;
  n.op = op;
  n.loc.file = model_.source;
  n.op_loc = n.loc;
  n.inputs = inputs;
  n.input_locs.assign(inputs.size(), n.loc);
  model_.graph->nodes.push_back(std::move(n));
  return model_.graph->nodes.back();
}

void Builder::comment(const std::string& node, const std::string& text) {
  model_.node_comments[node].push_back(text);
}

void Builder::set_weight(const std::string& node, const std::string& param, Tensor t) {
  model_.weights.set(node + "." + param, std::move(t));
}

void set_int(NodeDef& node, const std::string& key, int64_t value) {
  node.attrs[key].value = scalar(std::to_string(value));
}
void set_float(NodeDef& node, const std::string& key, double value) {
  node.attrs[key].value = scalar(format_value(value));
}
void set_string(NodeDef& node, const std::string& key, const std::string& value) {
  node.attrs[key].value = scalar(value, true);
}
void set_bool(NodeDef& node, const std::string& key, bool value) {
  node.attrs[key].value = scalar(value ? "true" : "false");
}
void set_ints(NodeDef& node, const std::string& key, const std::vector<int64_t>& values) {
  Value list;
  list.kind = Value::Kind::list;
  for (int64_t v : values) list.items.push_back(scalar(std::to_string(v)));
  node.attrs[key].value = list;
}

std::string convert_layer(Builder& b, const Layer& layer, const std::vector<std::string>& inputs,
                          std::vector<Tensor> weights) {
  auto it = converters().find(layer.class_name);
  if (it == converters().end()) {
    std::vector<std::string> known;
    for (const auto& [name, f] : converters()) known.push_back(name);
    throw b.error(layer, unsupported_reason(layer.class_name))
        .hint(fmt::format("the importer converts {} (docs/import.md)", quoted_list(known)));
  }
  if (inputs.size() != 1)
    throw b.error(layer,
                  fmt::format("the layer is called on {} tensors, expected one", inputs.size()));
  return it->second(b, layer, inputs, std::move(weights));
}

bool declared_input_shape(const Layer& layer, Dims& shape) {
  const json& c = layer.config;
  for (const char* key : {"batch_input_shape", "batch_shape"}) {
    auto it = c.find(key);
    if (it == c.end() || !it->is_array() || it->empty()) continue;
    shape.clear();
    for (size_t i = 1; i < it->size(); ++i)
      shape.push_back((*it)[i].is_number_integer() ? (*it)[i].get<int64_t>() : kDynamic);
    return true;
  }
  auto dim = c.find("input_dim");
  if (dim != c.end() && dim->is_number_integer()) {
    shape = {dim->get<int64_t>()};
    return true;
  }
  return false;
}

}  // namespace fg::keras
