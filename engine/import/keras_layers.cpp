// The per-class Keras layer converters (see keras_layers.hpp). Keras 1 and Keras 2 / tf.keras
// spell some keys differently (output_dim / units, border_mode / padding, ...): each converter
// reads either.
#include "engine/import/keras_layers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>

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

// A tuple attribute (kernel_size, strides, pool_size, dilation_rate): an int or a list of
// `rank` ints, returned as `rank` ints; `fallback` when absent or null.
std::vector<int64_t> ints_of(const Builder& b, const Layer& layer,
                             std::initializer_list<const char*> keys, size_t rank,
                             std::optional<int64_t> fallback = std::nullopt) {
  const json* v = find_key(layer, keys);
  if (!v) {
    if (fallback) return std::vector<int64_t>(rank, *fallback);
    throw b.error(layer, fmt::format("the config has no '{}'", *keys.begin()));
  }
  if (v->is_number_integer()) return std::vector<int64_t>(rank, v->get<int64_t>());
  if (!v->is_array() || v->size() != rank)
    throw b.error(layer, fmt::format("'{}' is {}, expected an integer or a list of {}",
                                     *keys.begin(), v->dump(), rank));
  std::vector<int64_t> out;
  for (const json& e : *v) {
    if (!e.is_number_integer())
      throw b.error(layer, fmt::format("'{}' is {}, expected integers", *keys.begin(), v->dump()));
    out.push_back(e.get<int64_t>());
  }
  return out;
}

// A tuple attribute as the YAML shows it: one int when every axis has the same value.
void set_tuple(NodeDef& node, const std::string& key, const std::vector<int64_t>& values) {
  if (std::all_of(values.begin(), values.end(), [&](int64_t v) { return v == values[0]; }))
    set_int(node, key, values[0]);
  else
    set_ints(node, key, values);
}

bool all_ones(const std::vector<int64_t>& values) {
  return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 1; });
}

// channels_first (true) or channels_last (false); Keras 1 writes dim_ordering th / tf.
bool channels_first(const Builder& b, const Layer& l) {
  const std::string format = string_of(b, l, {"data_format", "dim_ordering"}, "channels_last");
  if (format == "channels_first" || format == "th") return true;
  if (format == "channels_last" || format == "tf") return false;
  throw b.error(l, fmt::format("data_format '{}' is not supported", format));
}

// Keras's Permute dims (1-based, without the batch) that move the channels of a rank-`rank`
// sample (spatial axes + channels) from first to last, and back.
std::vector<int64_t> to_channels_last_dims(size_t rank) {
  std::vector<int64_t> dims;
  for (size_t i = 2; i <= rank; ++i) dims.push_back(static_cast<int64_t>(i));
  dims.push_back(1);
  return dims;
}
std::vector<int64_t> to_channels_first_dims(size_t rank) {
  std::vector<int64_t> dims = {static_cast<int64_t>(rank)};
  for (size_t i = 1; i < rank; ++i) dims.push_back(static_cast<int64_t>(i));
  return dims;
}

// For a channels_first layer: a permute node that makes its input channels-last; returns the
// node the channels-last op reads.
std::string permute_to_channels_last(Builder& b, const Layer& l, const std::string& in,
                                     size_t spatial) {
  const std::string t = l.name + "_to_channels_last";
  set_ints(b.add_node(t, "permute", {in}), "dims", to_channels_last_dims(spatial + 1));
  b.comment(t, fmt::format("{} ({}, channels_first) runs channels-last: its input is transposed "
                           "here{}",
                           l.name, l.class_name,
                           l.class_name.rfind("Global", 0) == 0
                               ? ""
                               : fmt::format(", its output back in '{}'", l.name)));
  return t;
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
  if (l.class_name == "Convolution1D") {  // Keras 1: its config first, then its kernel
    const Layer keras2 = keras1_convolution_as_keras2(b, l);
    return convert_conv1d(b, keras2, in, keras1_convolution_weights(b, l, std::move(w)));
  }
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

// Keras 1's recurrent layers keep one W, U, b triple per gate (W_g U_g b_g, gate after gate);
// ours are the gates concatenated along the last axis in `order` (positions in Keras 1's list).
std::vector<Tensor> concat_keras1_gates(const Builder& b, const Layer& l,
                                        const std::vector<Tensor>& w,
                                        const std::vector<int>& order) {
  const int64_t gates = static_cast<int64_t>(order.size());
  std::vector<Tensor> out;
  for (int part = 0; part < 3; ++part) {  // W, U, b
    const Dims& shape = w[part].shape();
    const int64_t u = shape.back();
    Dims cat = shape;
    cat.back() = gates * u;
    Tensor t(DType::f32, cat);
    const int64_t rows = static_cast<int64_t>(w[part].size()) / u;
    for (int64_t g = 0; g < gates; ++g) {
      const Tensor& src = w[order[g] * 3 + part];
      if (src.shape() != shape)
        throw b.error(l, fmt::format("the Keras 1 gate weights differ in shape: {} and {}",
                                     format_shape(shape), format_shape(src.shape())));
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(t.mutable_data<float>() + r * gates * u + g * u, src.data<float>() + r * u,
                    u * sizeof(float));
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Keras 1 LSTM weights (consume_less cpu / mem): W_i U_i b_i W_c U_c b_c W_f U_f b_f W_o U_o b_o;
// ours are the gates i, f, c, o.
std::vector<Tensor> keras1_lstm_weights(const Builder& b, const Layer& l, std::vector<Tensor> w) {
  return concat_keras1_gates(b, l, w, {0, 2, 1, 3});  // i, f, c, o in Keras 1's i, c, f, o
}

std::string convert_conv2d(Builder& b, const Layer& l, const std::vector<std::string>& in,
                           std::vector<Tensor> w) {
  if (l.class_name == "Convolution2D") {  // Keras 1: its config first, then its kernel
    const Layer keras2 = keras1_convolution_as_keras2(b, l);
    return convert_conv2d(b, keras2, in, keras1_convolution_weights(b, l, std::move(w)));
  }
  const bool first = channels_first(b, l);
  if (int_of(b, l, {"groups"}, 1) != 1) throw b.error(l, "groups > 1 is not supported yet");
  const std::string conv = first ? l.name + "_channels_last" : l.name;
  const std::string conv_in = first ? permute_to_channels_last(b, l, in[0], 2) : in[0];
  NodeDef& n = b.add_node(conv, "conv2d", {conv_in});
  set_int(n, "filters", int_of(b, l, {"filters"}));
  set_tuple(n, "kernel_size", ints_of(b, l, {"kernel_size"}, 2));
  if (auto s = ints_of(b, l, {"strides"}, 2, 1); !all_ones(s)) set_tuple(n, "strides", s);
  if (auto d = ints_of(b, l, {"dilation_rate"}, 2, 1); !all_ones(d))
    set_tuple(n, "dilation_rate", d);
  const std::string padding = string_of(b, l, {"padding"}, "valid");
  if (padding != "valid") set_string(n, "padding", padding);
  const std::string act = activation_of(b, l);
  // softmax acts on the last axis: for channels_first that is the width, after the permute
  const bool act_after = first && (act == "softmax" || act == "log_softmax");
  if (act != "linear" && !act_after) set_string(n, "activation", act);
  const bool bias = bool_of(b, l, {"use_bias"}, true);
  if (!bias) set_bool(n, "use_bias", false);
  expect_weights(b, l, w, bias ? 2 : 1);
  b.set_weight(conv, "kernel", std::move(w[0]));
  if (bias) b.set_weight(conv, "bias", std::move(w[1]));
  if (!first) return l.name;
  const std::string back = act_after ? l.name + "_channels_first" : l.name;
  set_ints(b.add_node(back, "permute", {conv}), "dims", to_channels_first_dims(3));
  if (act_after) set_string(b.add_node(l.name, "activation", {back}), "activation", act);
  return l.name;
}

// MaxPooling1D/2D, AveragePooling1D/2D (Keras 1: MaxPooling1D's pool_length, stride,
// border_mode).
std::string convert_pooling(Builder& b, const Layer& l, const std::vector<std::string>& in,
                            std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  const bool two_d = l.class_name.find("2D") != std::string::npos;
  const size_t rank = two_d ? 2 : 1;
  const bool max = l.class_name.rfind("Max", 0) == 0;
  const std::string op = fmt::format("{}_pooling{}d", max ? "max" : "average", two_d ? 2 : 1);
  const bool first = channels_first(b, l);
  const std::string pool = first ? l.name + "_channels_last" : l.name;
  const std::string pool_in = first ? permute_to_channels_last(b, l, in[0], rank) : in[0];
  NodeDef& n = b.add_node(pool, op, {pool_in});
  const auto size = ints_of(b, l, {"pool_size", "pool_length"}, rank, 2);
  if (size != std::vector<int64_t>(rank, 2)) set_tuple(n, "pool_size", size);
  // strides null (Keras's default) means the pool size, as the op's default
  if (find_key(l, {"strides", "stride"})) {
    const auto strides = ints_of(b, l, {"strides", "stride"}, rank);
    if (strides != size) set_tuple(n, "strides", strides);
  }
  const std::string padding = string_of(b, l, {"padding", "border_mode"}, "valid");
  if (padding != "valid") set_string(n, "padding", padding);
  if (!first) return l.name;
  set_ints(b.add_node(l.name, "permute", {pool}), "dims", to_channels_first_dims(rank + 1));
  return l.name;
}

// GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D.
std::string convert_global_pooling(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                   std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  const bool two_d = l.class_name.find("2D") != std::string::npos;
  const bool max = l.class_name.rfind("GlobalMax", 0) == 0;
  const std::string op =
      fmt::format("global_{}_pooling{}d", max ? "max" : "average", two_d ? 2 : 1);
  const bool keepdims = bool_of(b, l, {"keepdims"}, false);
  const bool first = channels_first(b, l);
  if (first && keepdims)
    throw b.error(l, "keepdims: true with data_format channels_first is not supported yet");
  // the pooled output [batch, channels] is the same in both layouts
  const std::string pool_in = first ? permute_to_channels_last(b, l, in[0], two_d ? 2 : 1) : in[0];
  NodeDef& n = b.add_node(l.name, op, {pool_in});
  if (keepdims) set_bool(n, "keepdims", true);
  return l.name;
}

std::string convert_embedding(Builder& b, const Layer& l, const std::vector<std::string>& in,
                              std::vector<Tensor> w) {
  b.make_ids_input(l, in[0]);
  NodeDef& n = b.add_node(l.name, "embedding", in);
  set_int(n, "input_dim", int_of(b, l, {"input_dim"}));
  set_int(n, "output_dim", int_of(b, l, {"output_dim"}));
  if (bool_of(b, l, {"mask_zero"}, false)) set_bool(n, "mask_zero", true);
  if (find_key(l, {"input_length"})) set_int(n, "input_length", int_of(b, l, {"input_length"}));
  if (bool_of(b, l, {"sparse"}, false))
    throw b.error(l, "sparse: true (sparse gradients) is not supported");
  expect_weights(b, l, w, 1);
  b.set_weight(l.name, "embeddings", std::move(w[0]));
  return l.name;
}

// The attributes lstm, gru and simple_rnn share (recurrent_activation only when `gated`: lstm,
// gru); returns whether the layer has a bias.
bool set_recurrent_attributes(Builder& b, const Layer& l, NodeDef& n, bool gated = true) {
  reject_true(b, l, "stateful", "the recurrent ops start every batch from a zero state");
  reject_true(b, l, "return_state", "the recurrent ops have one output");
  if (find_key(l, {"time_major"}) && bool_of(b, l, {"time_major"}, false))
    throw b.error(l, "time_major: true is not supported");
  set_int(n, "units", int_of(b, l, {"units", "output_dim"}));
  if (bool_of(b, l, {"return_sequences"}, false)) set_bool(n, "return_sequences", true);
  // RNN's zero_output_for_mask (Keras 3 writes it in every recurrent config); Bidirectional
  // sets it on its layers' configs from return_sequences (see convert_bidirectional)
  if (bool_of(b, l, {"zero_output_for_mask"}, false)) set_bool(n, "zero_output_for_mask", true);
  std::string act = string_of(b, l, {"activation"}, "tanh");
  std::string rec = gated ? string_of(b, l, {"recurrent_activation", "inner_activation"},
                                      b.keras_major() >= 3 ? "sigmoid" : "hard_sigmoid")
                          : "sigmoid";
  // the ops' hard_sigmoid is Keras 2's clip(0.2x + 0.5, 0, 1); Keras 3 changed the formula
  if (b.keras_major() >= 3)
    for (std::string* name : {&act, &rec})
      if (*name == "hard_sigmoid") {
        *name = "hard_sigmoid_keras3";
        b.comment(l.name, fmt::format("Keras {}'s hard_sigmoid is relu6(x + 3) / 6: the op's "
                                      "hard_sigmoid_keras3 (its hard_sigmoid is Keras 2's "
                                      "0.2x + 0.5)",
                                      b.keras_major()));
      }
  if (act != "tanh") set_string(n, "activation", act);
  if (rec != "sigmoid") set_string(n, "recurrent_activation", rec);
  const double dropout = float_of(b, l, {"dropout", "dropout_W"}, 0);
  const double rdrop = float_of(b, l, {"recurrent_dropout", "dropout_U"}, 0);
  if (dropout != 0) set_float(n, "dropout", dropout);
  if (rdrop != 0) set_float(n, "recurrent_dropout", rdrop);
  if (dropout != 0 || rdrop != 0)
    b.comment(l.name, fmt::format("dropout only acts in training, which the {} op refuses with a "
                                  "rate > 0",
                                  n.op));
  const bool bias = bool_of(b, l, {"use_bias"}, true);
  if (!bias) set_bool(n, "use_bias", false);
  return bias;
}

std::string convert_lstm(Builder& b, const Layer& l, const std::vector<std::string>& in,
                         std::vector<Tensor> w) {
  NodeDef& n = b.add_node(l.name, "lstm", in);
  const bool bias = set_recurrent_attributes(b, l, n);
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

// Keras 1 GRU weights: W_z U_z b_z W_r U_r b_r W_h U_h b_h; ours are the gates z, r, h (the
// same order).
std::vector<Tensor> keras1_gru_weights(const Builder& b, const Layer& l, std::vector<Tensor> w) {
  return concat_keras1_gates(b, l, w, {0, 1, 2});
}

std::string convert_gru(Builder& b, const Layer& l, const std::vector<std::string>& in,
                        std::vector<Tensor> w) {
  NodeDef& n = b.add_node(l.name, "gru", in);
  const bool bias = set_recurrent_attributes(b, l, n);
  // Keras 1 and 2 default to reset_after false, tf.keras 2 and Keras 3 write it (Keras 3's
  // default is true); the op's default is true
  const bool reset_after = bool_of(b, l, {"reset_after"}, b.keras_major() >= 3);
  if (!reset_after) set_bool(n, "reset_after", false);
  if (w.size() == 9) {
    w = keras1_gru_weights(b, l, std::move(w));
    b.comment(l.name,
              "Keras 1 weights: the 9 per-gate arrays concatenated in the gate order z, r, h");
  }
  expect_weights(b, l, w, bias ? 3 : 2);
  b.set_weight(l.name, "kernel", std::move(w[0]));
  b.set_weight(l.name, "recurrent_kernel", std::move(w[1]));
  if (bias) b.set_weight(l.name, "bias", std::move(w[2]));
  return l.name;
}

// Keras SimpleRNN: kernel, recurrent_kernel, bias (Keras 1: W, U, b, the same arrays; its
// output_dim is units, init / inner_init only initialise).
std::string convert_simple_rnn(Builder& b, const Layer& l, const std::vector<std::string>& in,
                               std::vector<Tensor> w) {
  NodeDef& n = b.add_node(l.name, "simple_rnn", in);
  const bool bias = set_recurrent_attributes(b, l, n, false);
  expect_weights(b, l, w, bias ? 3 : 2);
  b.set_weight(l.name, "kernel", std::move(w[0]));
  b.set_weight(l.name, "recurrent_kernel", std::move(w[1]));
  if (bias) b.set_weight(l.name, "bias", std::move(w[2]));
  return l.name;
}

std::string convert_batch_normalization(Builder& b, const Layer& l,
                                        const std::vector<std::string>& in, std::vector<Tensor> w) {
  if (int_of(b, l, {"mode"}, 0) != 0)
    throw b.error(l, "Keras 1 mode 1 and 2 (per-batch statistics at inference) are not supported");
  NodeDef& n = b.add_node(l.name, "batch_normalization", in);
  const json* axis = find_key(l, {"axis"});
  if (axis && axis->is_array() && axis->size() != 1)
    throw b.error(
        l, fmt::format("a normalization over several axes {} is not supported", axis->dump()));
  if (int64_t a = int_of(b, l, {"axis"}, -1); a != -1) set_int(n, "axis", a);
  if (double e = float_of(b, l, {"epsilon"}, 1e-3); e != 1e-3) set_float(n, "epsilon", e);
  if (double m = float_of(b, l, {"momentum"}, 0.99); m != 0.99) set_float(n, "momentum", m);
  const bool center = bool_of(b, l, {"center"}, true), scale = bool_of(b, l, {"scale"}, true);
  if (!center) set_bool(n, "center", false);
  if (!scale) set_bool(n, "scale", false);
  if (find_key(l, {"renorm"}) && bool_of(b, l, {"renorm"}, false))
    throw b.error(l, "renorm: true is not supported");
  // the file's order is gamma, beta, moving_mean, moving_variance without the absent ones
  // (Keras 1 calls the last one running_std, but it holds the variance too)
  expect_weights(b, l, w, 2 + center + scale);
  size_t i = 0;
  if (scale) b.set_weight(l.name, "gamma", std::move(w[i++]));
  if (center) b.set_weight(l.name, "beta", std::move(w[i++]));
  b.set_weight(l.name, "moving_mean", std::move(w[i++]));
  b.set_weight(l.name, "moving_variance", std::move(w[i++]));
  return l.name;
}

std::string convert_layer_normalization(Builder& b, const Layer& l,
                                        const std::vector<std::string>& in, std::vector<Tensor> w) {
  if (bool_of(b, l, {"rms_scaling"}, false)) throw b.error(l, "rms_scaling: true is not supported");
  NodeDef& n = b.add_node(l.name, "layer_normalization", in);
  const json* axis = find_key(l, {"axis"});
  if (axis && axis->is_array() && axis->size() != 1) {
    std::vector<int64_t> axes;
    for (const json& a : *axis) {
      if (!a.is_number_integer())
        throw b.error(l, fmt::format("'axis' is {}, expected integers", axis->dump()));
      axes.push_back(a.get<int64_t>());
    }
    set_ints(n, "axis", axes);
  } else if (int64_t a = int_of(b, l, {"axis"}, -1); a != -1) {
    set_int(n, "axis", a);
  }
  if (double e = float_of(b, l, {"epsilon"}, 1e-3); e != 1e-3) set_float(n, "epsilon", e);
  const bool center = bool_of(b, l, {"center"}, true), scale = bool_of(b, l, {"scale"}, true);
  if (!center) set_bool(n, "center", false);
  if (!scale) set_bool(n, "scale", false);
  expect_weights(b, l, w, size_t{center} + size_t{scale});
  size_t i = 0;
  if (scale) b.set_weight(l.name, "gamma", std::move(w[i++]));
  if (center) b.set_weight(l.name, "beta", std::move(w[i++]));
  return l.name;
}

std::string convert_upsampling2d(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                 std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  const bool first = channels_first(b, l);
  const std::string up = first ? l.name + "_channels_last" : l.name;
  const std::string up_in = first ? permute_to_channels_last(b, l, in[0], 2) : in[0];
  NodeDef& n = b.add_node(up, "upsampling2d", {up_in});
  if (auto size = ints_of(b, l, {"size"}, 2, 2); size != std::vector<int64_t>{2, 2})
    set_tuple(n, "size", size);
  const std::string interpolation = string_of(b, l, {"interpolation"}, "nearest");
  if (interpolation != "nearest" && interpolation != "bilinear")
    throw b.error(
        l, fmt::format("interpolation '{}' is not supported (nearest, bilinear)", interpolation));
  if (interpolation != "nearest") set_string(n, "interpolation", interpolation);
  if (!first) return l.name;
  set_ints(b.add_node(l.name, "permute", {up}), "dims", to_channels_first_dims(3));
  return l.name;
}

// TimeDistributed over a Dense: the dense op already applies to the last axis of every step.
std::string convert_time_distributed(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                     std::vector<Tensor> w) {
  const json* inner = find_key(l, {"layer"});
  if (!inner || !inner->is_object() || !inner->contains("class_name") ||
      !(*inner)["class_name"].is_string() || !inner->contains("config") ||
      !(*inner)["config"].is_object())
    throw b.error(l, "the config has no wrapped 'layer' with a class_name and a config");
  Layer dense{(*inner)["class_name"].get<std::string>(), l.name, (*inner)["config"]};
  if (dense.class_name != "Dense")
    throw b.error(l, fmt::format("TimeDistributed over a {} is not supported (over a Dense it is)",
                                 dense.class_name));
  b.comment(l.name, fmt::format("{} (TimeDistributed over a Dense): the dense op applies to the "
                                "last axis of every step",
                                l.name));
  return convert_dense(b, dense, in, std::move(w));
}

// Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum: layers reading several
// tensors.
std::string convert_merge(Builder& b, const Layer& l, const std::vector<std::string>& in,
                          std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  if (in.size() < 2)
    throw b.error(
        l, fmt::format("a merge layer needs at least 2 inputs, the model gives it {}", in.size()));
  std::string op = l.class_name;
  std::transform(op.begin(), op.end(), op.begin(), [](unsigned char c) { return std::tolower(c); });
  NodeDef& n = b.add_node(l.name, op, in);
  if (l.class_name == "Concatenate")
    if (int64_t a = int_of(b, l, {"axis"}, -1); a != -1) set_int(n, "axis", a);
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

// PReLU: alpha of the input's per-sample shape, 1 on the shared axes (null, an int or a list).
std::string convert_prelu(Builder& b, const Layer& l, const std::vector<std::string>& in,
                          std::vector<Tensor> w) {
  NodeDef& n = b.add_node(l.name, "prelu", in);
  if (const json* axes = find_key(l, {"shared_axes"})) {
    std::vector<int64_t> list;
    if (axes->is_number_integer()) list.push_back(axes->get<int64_t>());
    if (axes->is_array())
      for (const json& a : *axes) {
        if (!a.is_number_integer())
          throw b.error(l, fmt::format("'shared_axes' is {}, expected integers", axes->dump()));
        list.push_back(a.get<int64_t>());
      }
    if (!axes->is_number_integer() && !axes->is_array())
      throw b.error(
          l, fmt::format("'shared_axes' is {}, expected an integer or a list", axes->dump()));
    if (!list.empty()) set_ints(n, "shared_axes", list);
  }
  expect_weights(b, l, w, 1);
  b.set_weight(l.name, "alpha", std::move(w[0]));
  return l.name;
}

std::string convert_repeat_vector(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                  std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  set_int(b.add_node(l.name, "repeat_vector", in), "n", int_of(b, l, {"n"}));
  return l.name;
}

std::string convert_masking(Builder& b, const Layer& l, const std::vector<std::string>& in,
                            std::vector<Tensor> w) {
  expect_weights(b, l, w, 0);
  NodeDef& n = b.add_node(l.name, "masking", in);
  if (double v = float_of(b, l, {"mask_value"}, 0.0); v != 0.0) set_float(n, "mask_value", v);
  return l.name;
}

using Converter = std::function<std::string(Builder&, const Layer&, const std::vector<std::string>&,
                                            std::vector<Tensor>)>;

// ---- go_backwards and Bidirectional: reverse nodes around the left-to-right recurrent ops ----

// The recurrent layer classes and their converters, which build a left-to-right node (the
// layer's go_backwards is converted around them by convert_recurrent). Bidirectional wraps any
// class listed here.
const std::map<std::string, Converter>& recurrent_converters() {
  static const std::map<std::string, Converter> table = {
      {"LSTM", convert_lstm},
      {"GRU", convert_gru},
      {"SimpleRNN", convert_simple_rnn},
  };
  return table;
}

bool attr_is_true(const NodeDef& n, const std::string& key) {
  auto it = n.attrs.find(key);
  return it != n.attrs.end() && it->second.value.scalar == "true";
}

// Whether the node output `name` may carry a mask: an Embedding with mask_zero, passed on by the
// nodes after it (a recurrent node only with return_sequences, average pooling not at all).
bool may_carry_mask(const GraphDef& g, const std::string& name, std::set<std::string>& seen) {
  if (!seen.insert(name).second) return false;
  for (const NodeDef& n : g.nodes) {
    if (n.name != name) continue;
    if (n.op == "embedding") return attr_is_true(n, "mask_zero");
    const bool recurrent = n.op == "lstm" || n.op == "gru" || n.op == "simple_rnn";
    if ((recurrent && !attr_is_true(n, "return_sequences")) || n.op == "global_average_pooling1d")
      return false;
    for (const std::string& in : n.inputs)
      if (may_carry_mask(g, in, seen)) return true;
    return false;
  }
  return false;  // a model input
}
bool may_carry_mask(const Builder& b, const std::string& name) {
  std::set<std::string> seen;
  return may_carry_mask(b.graph(), name, seen);
}

// The layer as a left-to-right one named `name`: go_backwards false in its config.
Layer left_to_right(const Layer& l, const std::string& name) {
  Layer copy = l;
  copy.name = name;
  copy.config["go_backwards"] = false;
  return copy;
}

// A recurrent layer of a class in recurrent_converters() named `l.name`, reading `in`: with
// go_backwards, a reverse node `reversed_input` first. Returns the recurrent node.
std::string convert_in_direction(Builder& b, const Layer& l, const std::string& in,
                                 std::vector<Tensor> w, const std::string& reversed_input) {
  const Converter& convert = recurrent_converters().at(l.class_name);
  if (!bool_of(b, l, {"go_backwards"}, false)) return convert(b, l, {in}, std::move(w));
  b.add_node(reversed_input, "reverse", {in});
  b.comment(reversed_input,
            fmt::format("{} ({}, go_backwards) reads the steps last to first: its input is "
                        "reversed here (with the mask), and with return_sequences its outputs "
                        "stay in that reversed order, as in Keras",
                        l.name, l.class_name));
  return convert(b, left_to_right(l, l.name), {reversed_input}, std::move(w));
}

// LSTM, GRU (any class of recurrent_converters()), go_backwards included.
std::string convert_recurrent(Builder& b, const Layer& l, const std::vector<std::string>& in,
                              std::vector<Tensor> w) {
  if (bool_of(b, l, {"go_backwards"}, false) && bool_of(b, l, {"return_sequences"}, false) &&
      may_carry_mask(b, in[0]))
    throw b
        .error(l,
               "go_backwards with return_sequences on a masked input (an Embedding with "
               "mask_zero before it) is not supported: Keras passes the input's mask on "
               "unreversed with the reversed outputs, the reverse node reverses it")
        .hint("set return_sequences false, or mask_zero false on the Embedding");
  return convert_in_direction(b, l, in[0], std::move(w), l.name + "_reversed_input");
}

// Bidirectional's wrapped layer under `key` (config.layer, config.backward_layer), named `name`.
Layer wrapped_recurrent_layer(const Builder& b, const Layer& l, const char* key,
                              const std::string& name) {
  auto it = l.config.find(key);
  if (it == l.config.end() || !it->is_object() || !it->contains("class_name") ||
      !(*it)["class_name"].is_string() || !it->contains("config") || !(*it)["config"].is_object())
    throw b.error(
        l, fmt::format("the config has no wrapped '{}' with a class_name and a config", key));
  Layer inner{(*it)["class_name"].get<std::string>(), name, (*it)["config"]};
  if (!recurrent_converters().count(inner.class_name)) {
    std::vector<std::string> known;
    for (const auto& [cls, f] : recurrent_converters()) known.push_back(cls);
    throw b.error(l, fmt::format("Bidirectional over a {} is not supported (over {} it is)",
                                 inner.class_name, quoted_list(known)));
  }
  return inner;
}

// Keras's Bidirectional: the wrapped layer on the input, a copy with go_backwards flipped (or
// the config's backward_layer) on it too, the backward outputs put back in time order with
// return_sequences, and the two merged. The file holds the forward layer's weights, then the
// backward layer's.
std::string convert_bidirectional(Builder& b, const Layer& l, const std::vector<std::string>& in,
                                  std::vector<Tensor> w) {
  static const std::map<std::string, std::string> merge_ops = {
      {"concat", "concatenate"}, {"sum", "add"}, {"mul", "multiply"}, {"ave", "average"}};
  auto mode = l.config.find("merge_mode");
  if (mode != l.config.end() && mode->is_null())
    throw b
        .error(l,
               "merge_mode None (the two directions' outputs as a list) is not supported: a "
               "node has one output")
        .hint("use merge_mode 'concat', 'sum', 'mul' or 'ave'");
  const std::string merge = string_of(b, l, {"merge_mode"}, "concat");
  if (!merge_ops.count(merge))
    throw b.error(
        l, fmt::format("merge_mode '{}' is not one of 'concat', 'sum', 'mul', 'ave'", merge));
  Layer forward = wrapped_recurrent_layer(b, l, "layer", l.name + "_forward");
  Layer backward = l.config.contains("backward_layer") && !l.config["backward_layer"].is_null()
                       ? wrapped_recurrent_layer(b, l, "backward_layer", l.name + "_backward")
                       : left_to_right(forward, l.name + "_backward");
  if (!l.config.contains("backward_layer") || l.config["backward_layer"].is_null())
    backward.config["go_backwards"] = !bool_of(b, forward, {"go_backwards"}, false);
  if (bool_of(b, forward, {"go_backwards"}, false) == bool_of(b, backward, {"go_backwards"}, false))
    throw b.error(l, "the forward and backward layers have the same go_backwards");
  const bool sequences = bool_of(b, forward, {"return_sequences"}, false);
  if (sequences != bool_of(b, backward, {"return_sequences"}, false))
    throw b.error(l, "the forward and backward layers differ in return_sequences");
  // Keras's Bidirectional forces each layer's zero_output_for_mask to its return_sequences
  // (masked steps then output zeros, whatever the wrapped config says)
  forward.config["zero_output_for_mask"] = sequences;
  backward.config["zero_output_for_mask"] = sequences;
  if (w.empty() || w.size() % 2 != 0)
    throw b.error(l, fmt::format("the file holds {} weight arrays for this layer, expected the "
                                 "forward layer's and then as many for the backward layer",
                                 w.size()));
  std::vector<Tensor> backward_weights(std::make_move_iterator(w.begin() + w.size() / 2),
                                       std::make_move_iterator(w.end()));
  w.resize(w.size() / 2);
  const std::string f =
      convert_in_direction(b, forward, in[0], std::move(w), forward.name + "_input");
  std::string r = convert_in_direction(b, backward, in[0], std::move(backward_weights),
                                       backward.name + "_input");
  if (sequences) {
    for (const std::string& direction : {f, r})
      b.comment(direction, fmt::format("zero_output_for_mask: {} (Bidirectional with "
                                       "return_sequences) sets it, masked steps output zeros",
                                       l.name));
    const std::string back_in_time = backward.name + "_reversed";
    b.add_node(back_in_time, "reverse", {r});
    b.comment(back_in_time, fmt::format("{}'s backward outputs back in time order", l.name));
    r = back_in_time;
  }
  b.add_node(l.name, merge_ops.at(merge), {f, r});
  b.comment(l.name, fmt::format("{} (Bidirectional, merge_mode '{}'): the forward and backward "
                                "outputs merged{}",
                                l.name, merge, merge == "concat" ? ", forward first" : ""));
  return l.name;
}

const std::map<std::string, Converter>& converters() {
  static const std::map<std::string, Converter> table = {
      {"Dense", convert_dense},
      {"Conv1D", convert_conv1d},
      {"Convolution1D", convert_conv1d},
      {"Conv2D", convert_conv2d},
      {"Convolution2D", convert_conv2d},
      {"MaxPooling1D", convert_pooling},
      {"MaxPooling2D", convert_pooling},
      {"AveragePooling1D", convert_pooling},
      {"AveragePooling2D", convert_pooling},
      {"MaxPool1D", convert_pooling},
      {"MaxPool2D", convert_pooling},
      {"AvgPool1D", convert_pooling},
      {"AvgPool2D", convert_pooling},
      {"GlobalAveragePooling1D", convert_global_pooling},
      {"GlobalAveragePooling2D", convert_global_pooling},
      {"GlobalMaxPooling1D", convert_global_pooling},
      {"GlobalMaxPooling2D", convert_global_pooling},
      {"GlobalAvgPool1D", convert_global_pooling},
      {"GlobalAvgPool2D", convert_global_pooling},
      {"GlobalMaxPool1D", convert_global_pooling},
      {"GlobalMaxPool2D", convert_global_pooling},
      {"Embedding", convert_embedding},
      {"LSTM", convert_recurrent},
      {"GRU", convert_recurrent},
      {"SimpleRNN", convert_recurrent},
      {"Bidirectional", convert_bidirectional},
      {"BatchNormalization", convert_batch_normalization},
      {"LayerNormalization", convert_layer_normalization},
      {"UpSampling2D", convert_upsampling2d},
      {"TimeDistributed", convert_time_distributed},
      {"Concatenate", convert_merge},
      {"Add", convert_merge},
      {"Subtract", convert_merge},
      {"Multiply", convert_merge},
      {"Average", convert_merge},
      {"Maximum", convert_merge},
      {"Minimum", convert_merge},
      {"Activation", convert_activation_layer},
      {"ReLU", convert_activation_layer},
      {"LeakyReLU", convert_activation_layer},
      {"ELU", convert_activation_layer},
      {"ThresholdedReLU", convert_activation_layer},
      {"PReLU", convert_prelu},
      {"Softmax", convert_activation_layer},
      {"Flatten", convert_shape_layer},
      {"Dropout", convert_shape_layer},
      {"Permute", convert_shape_layer},
      {"Reshape", convert_shape_layer},
      {"RepeatVector", convert_repeat_vector},
      {"Masking", convert_masking},
  };
  return table;
}

bool is_merge_layer(const std::string& cls) {
  for (const char* m :
       {"Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
    if (cls == m) return true;
  return false;
}

// Why some well-known classes cannot be imported.
std::string unsupported_reason(const std::string& cls) {
  if (cls == "Lambda") return "a Lambda layer holds Python code, which cannot run outside Python";
  if (cls == "TFOpLambda" || cls == "SlicingOpLambda")
    return "a TensorFlow operation called on a Keras tensor holds Python code";
  if (cls == "Sequential" || cls == "Functional" || cls == "Model")
    return "nested models are not supported yet";
  if (cls == "Merge")
    return "Keras 1's Merge layer is not supported (Keras 2's Concatenate, Add, ... layers are)";
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

void Builder::make_ids_input(const Layer& layer, const std::string& input) {
  for (InputDef& in : model_.graph->inputs) {
    if (in.name != input) continue;
    in.dtype = DType::i32;
    model_.input_comments[input] +=
        std::string(model_.input_comments[input].empty() ? "" : "; ") +
        fmt::format("int32: the ids '{}' (Embedding) looks up", layer.name);
    return;
  }
  throw error(layer, fmt::format("an Embedding reading '{}', which is not a model input, is not "
                                 "supported (the ids must be an int32 model input)",
                                 input));
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
  if (inputs.size() != 1 && !is_merge_layer(layer.class_name))
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
