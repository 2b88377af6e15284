// oneDNN 2.6 descriptors for the recurrent layers (layers/recurrent.cpp: lstm, gru, simple_rnn).
#include <fmt/format.h>

#include "framework/error.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

int rnn_gates(RnnKind kind) {
  return kind == RnnKind::lstm ? 4 : kind == RnnKind::vanilla ? 1 : 3;
}

int rnn_bias_gates(RnnKind kind) {
  return kind == RnnKind::vanilla ? 1 : kind == RnnKind::gru ? 3 : 4;
}

memory::desc rnn_keras_weights_desc(int64_t in, int gates, int64_t units) {
  return memory::desc({1, 1, in, gates, units}, dt::f32, tag::ldigo);
}

RnnPrimitive make_rnn_forward(RnnKind kind, int64_t steps, int64_t batch, int64_t features,
                              int64_t units, bool with_dst_iter, const dnnl::engine& engine,
                              dnnl::algorithm vanilla_activation) {
  const int gates = rnn_gates(kind);
  RnnPrimitive r;
  r.src_layer = memory::desc({steps, batch, features}, dt::f32, tag::ntc);
  r.dst_layer = memory::desc({steps, batch, units}, dt::f32, tag::ntc);
  r.dst_iter =
      with_dst_iter ? memory::desc({1, 1, batch, units}, dt::f32, tag::ldnc) : memory::desc();
  if (kind == RnnKind::lstm) r.dst_iter_c = r.dst_iter;
  memory::desc wl({1, 1, features, gates, units}, dt::f32, tag::any);
  memory::desc wi({1, 1, units, gates, units}, dt::f32, tag::any);
  r.bias = memory::desc({1, 1, rnn_bias_gates(kind), units}, dt::f32, tag::ldgo);
  const memory::desc none;  // zero initial state, no cell state output
  const auto prop = dnnl::prop_kind::forward_inference;
  const auto dir = dnnl::rnn_direction::unidirectional_left2right;
  // A user scratchpad (from the activation arena): with the library-managed one, two concurrent
  // executions of the same RNN primitive crashed here (oneDNN 2.6.3).
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto take = [&r](const auto& pd) {
    r.weights_layer = pd.weights_layer_desc();
    r.weights_iter = pd.weights_iter_desc();
    r.impl = impl_name(pd);
    r.scratchpad = pd.scratchpad_desc();
    r.prim = dnnl::primitive(pd.get());
  };
  try {
    if (kind == RnnKind::lstm) {
      take(dnnl::lstm_forward::primitive_desc(
          dnnl::lstm_forward::desc(prop, dir, r.src_layer, none, none, wl, wi, r.bias, r.dst_layer,
                                   r.dst_iter, r.dst_iter_c),
          attr, engine));
    } else if (kind == RnnKind::vanilla) {
      take(dnnl::vanilla_rnn_forward::primitive_desc(
          dnnl::vanilla_rnn_forward::desc(prop, vanilla_activation, dir, r.src_layer, none, wl, wi,
                                          r.bias, r.dst_layer, r.dst_iter),
          attr, engine));
    } else if (kind == RnnKind::gru) {
      take(dnnl::gru_forward::primitive_desc(
          dnnl::gru_forward::desc(prop, dir, r.src_layer, none, wl, wi, r.bias, r.dst_layer,
                                  r.dst_iter),
          attr, engine));
    } else {
      take(dnnl::lbr_gru_forward::primitive_desc(
          dnnl::lbr_gru_forward::desc(prop, dir, r.src_layer, none, wl, wi, r.bias, r.dst_layer,
                                      r.dst_iter),
          attr, engine));
    }
  } catch (const dnnl::error& e) {
    throw Error(fmt::format(
        "internal: oneDNN could not build the RNN primitive (T={}, N={}, F={}, units={}): {}",
        steps, batch, features, units, e.what()));
  }
  return r;
}

}  // namespace fg::onednn
