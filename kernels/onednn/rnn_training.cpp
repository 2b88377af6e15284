// oneDNN 2.6 training descriptors for the recurrent layers (see rnn_training.hpp).
#include "kernels/onednn/rnn_training.hpp"

#include <fmt/format.h>

#include "framework/error.hpp"

namespace fg::onednn {
namespace {

using dnnl::prop_kind;
const auto kDirection = dnnl::rnn_direction::unidirectional_left2right;

template <typename Pd>
void take_forward(RnnTrainingPrimitives& r, const Pd& pd) {
  r.forward = pd;
  r.weights_layer = pd.weights_layer_desc();
  r.weights_iter = pd.weights_iter_desc();
  r.workspace = pd.workspace_desc();
}

template <typename Pd>
void take_backward(RnnTrainingPrimitives& r, const Pd& pd) {
  r.backward = pd;
  r.bwd_weights_layer = pd.weights_layer_desc();
  r.bwd_weights_iter = pd.weights_iter_desc();
  r.diff_weights_layer = pd.diff_weights_layer_desc();
  r.diff_weights_iter = pd.diff_weights_iter_desc();
  if (pd.diff_bias_desc() != r.bias)
    throw Error("internal: the RNN backward wants diff_bias in another layout than ldgo");
}

}  // namespace

RnnTrainingPrimitives make_rnn_training(RnnKind kind, int64_t steps, int64_t batch,
                                        int64_t features, int64_t units) {
  // simple_rnn trains on the plain C++ path only (layers/recurrent_training.cpp).
  if (kind == RnnKind::vanilla)
    throw Error("internal: no oneDNN training primitives for the vanilla RNN");
  const int gates = rnn_gates(kind);
  RnnTrainingPrimitives r;
  r.src_layer = memory::desc({steps, batch, features}, dt::f32, tag::ntc);
  r.dst_layer = memory::desc({steps, batch, units}, dt::f32, tag::ntc);
  r.bias = memory::desc({1, 1, rnn_bias_gates(kind), units}, dt::f32, tag::ldgo);
  const memory::desc wl({1, 1, features, gates, units}, dt::f32, tag::any);
  const memory::desc wi({1, 1, units, gates, units}, dt::f32, tag::any);
  const memory::desc none;  // zero initial state, no last state asked for
  const dnnl::primitive_attr attr = make_attr();
  const dnnl::engine& eng = cpu_engine();
  const auto fwd = prop_kind::forward_training;
  const auto bwd = prop_kind::backward;
  const memory::desc& x = r.src_layer;
  const memory::desc& y = r.dst_layer;
  const memory::desc& b = r.bias;
  try {
    if (kind == RnnKind::lstm) {
      dnnl::lstm_forward::primitive_desc f(
          dnnl::lstm_forward::desc(fwd, kDirection, x, none, none, wl, wi, b, y, none, none), attr,
          eng);
      take_forward(r, f);
      take_backward(
          r, dnnl::lstm_backward::primitive_desc(
                 dnnl::lstm_backward::desc(bwd, kDirection, x, none, none, wl, wi, b, y, none, none,
                                           x, none, none, wl, wi, b, y, none, none),
                 attr, eng, f));
    } else if (kind == RnnKind::gru) {
      dnnl::gru_forward::primitive_desc f(
          dnnl::gru_forward::desc(fwd, kDirection, x, none, wl, wi, b, y, none), attr, eng);
      take_forward(r, f);
      take_backward(r, dnnl::gru_backward::primitive_desc(
                           dnnl::gru_backward::desc(bwd, kDirection, x, none, wl, wi, b, y, none, x,
                                                    none, wl, wi, b, y, none),
                           attr, eng, f));
    } else {
      dnnl::lbr_gru_forward::primitive_desc f(
          dnnl::lbr_gru_forward::desc(fwd, kDirection, x, none, wl, wi, b, y, none), attr, eng);
      take_forward(r, f);
      take_backward(r, dnnl::lbr_gru_backward::primitive_desc(
                           dnnl::lbr_gru_backward::desc(bwd, kDirection, x, none, wl, wi, b, y,
                                                        none, x, none, wl, wi, b, y, none),
                           attr, eng, f));
    }
  } catch (const dnnl::error& e) {
    throw Error(fmt::format(
        "internal: oneDNN could not build the RNN training primitives (T={}, N={}, F={}, "
        "units={}): {}",
        steps, batch, features, units, e.what()));
  }
  return r;
}

}  // namespace fg::onednn
