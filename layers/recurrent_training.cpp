// Training kernels of lstm, gru and simple_rnn (see layers/recurrent.hpp and
// docs/ops/recurrent_embedding.md, "Gradient").
//
// Two paths, chosen per run from the mask exactly as inference chooses (the forward and the
// backward see the same mask, so they always take the same path):
//   oneDNN  activation tanh, recurrent_activation sigmoid, no mask or a right-padded one:
//           lstm / gru / lbr_gru forward_training (saved: dst_layer and the workspace), then
//           the backward primitive. Right-padded rows: steps >= len never feed earlier ones,
//           so their d dst_layer is zero and the d outputs of padded steps (which repeat the
//           state of step len-1) are added to step len-1 (with zero_output_for_mask those
//           outputs are zeros: their d outputs are dropped).
//   plain   any activation pair, any mask: exact C++ backpropagation through time. The forward
//           saves per step the gates' pre-activations and the states; the backward runs the
//           recursion per batch row (OpenMP over rows), then the weight gradients as matmuls
//           over all steps (Eigen). A masked step carries h (and c) over unchanged: the
//           gradient passes through it to the previous state and its input gets none; its
//           d output joins that gradient unless zero_output_for_mask made the output zeros.
//           simple_rnn always takes this path (its cell is one matmul pair and an activation;
//           no oneDNN vanilla RNN training primitives are built).
#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "framework/op.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/onednn/rnn_training.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/recurrent.hpp"

namespace fg::layers {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;

float sigmoid(float x) {
  return 1.f / (1.f + std::exp(-x));
}

// d activation / dx at the pre-activation x, for every name of activation_fn.
const std::map<std::string, ActFn>& activation_grad_table() {
  static const std::map<std::string, ActFn> table = {
      {"linear", [](float) { return 1.f; }},
      {"relu", [](float x) { return x > 0.f ? 1.f : 0.f; }},
      {"relu6", [](float x) { return x > 0.f && x < 6.f ? 1.f : 0.f; }},
      {"sigmoid",
       [](float x) {
         const float s = sigmoid(x);
         return s * (1.f - s);
       }},
      {"tanh",
       [](float x) {
         const float t = std::tanh(x);
         return 1.f - t * t;
       }},
      {"hard_sigmoid", [](float x) { return x > -2.5f && x < 2.5f ? 0.2f : 0.f; }},
      {"hard_sigmoid_keras3", [](float x) { return x > -3.f && x < 3.f ? 1.f / 6.f : 0.f; }},
      {"elu", [](float x) { return x > 0.f ? 1.f : std::exp(x); }},
      {"selu",
       [](float x) {
         return 1.0507009873554805f * (x > 0.f ? 1.f : 1.6732632423543772f * std::exp(x));
       }},
      {"softplus", sigmoid},
      {"softsign",
       [](float x) {
         const float d = 1.f + std::fabs(x);
         return 1.f / (d * d);
       }},
      {"swish", [](float x) { return sigmoid(x) * (1.f + x * (1.f - sigmoid(x))); }},
      {"silu", [](float x) { return sigmoid(x) * (1.f + x * (1.f - sigmoid(x))); }},
      {"gelu",
       [](float x) {
         return 0.5f * (1.f + std::erf(x * 0.70710678118654752f)) +
                x * 0.3989422804014327f * std::exp(-0.5f * x * x);
       }},
      {"gelu_approximate",
       [](float x) {
         const float k = 0.7978845608028654f;
         const float t = std::tanh(k * (x + 0.044715f * x * x * x));
         return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3 * 0.044715f * x * x);
       }},
      {"mish",
       [](float x) {
         const float sp = x > 20.f ? x : std::log1p(std::exp(x));
         const float t = std::tanh(sp);
         return t + x * (1.f - t * t) * sigmoid(x);
       }},
      {"exponential", [](float x) { return std::exp(x); }},
  };
  return table;
}

// Everything both kernels know: sizes, the cell, the argument indices and temporaries.
struct RecurrentTraining {
  RecurrentConfig cfg;
  int64_t batch = 0, steps = 0, features = 0, units = 0;
  int gates = 0;
  bool has_onednn = false;     // the oneDNN path exists (default activations)
  bool plain_possible = true;  // the plain path may run (no oneDNN path, or a masked input)
  bool frozen = false, needs_dx = true;
  BackwardArgs args;
  ActFn act = nullptr, rec_act = nullptr, act_grad = nullptr, rec_act_grad = nullptr;
  onednn::RnnKind kind = onednn::RnnKind::lstm;
  onednn::RnnTrainingPrimitives prims;

  int64_t gu() const { return gates * units; }
  int64_t rows() const { return batch * steps; }
  // Floats per (row, step) in saved 0 on the plain path: pre-activations [G*U], then the cell
  // state (LSTM) or the recurrent candidate term h R_h + b_rec_h (reset_after GRU) [U], then h.
  int64_t record() const { return gu() + 2 * units; }
  const float* bias_in(const float* bias) const { return bias; }
  const float* bias_rec(const float* bias) const {
    return bias != nullptr && cfg.cell == RecurrentCell::gru && cfg.reset_after ? bias + gu()
                                                                                : nullptr;
  }
  // Whether step t of row b outputs zeros (zero_output_for_mask on a masked step): its d
  // output is then dropped.
  bool zeroed_output(const uint8_t* mask, int64_t b, int64_t t) const {
    return cfg.zero_output_for_mask && mask != nullptr && mask[b * steps + t] == 0;
  }
  // The mask decides the path: oneDNN when it exists and the mask is absent or right-padded.
  bool onednn_path(const uint8_t* mask, std::vector<int64_t>& lengths) const {
    lengths.assign(static_cast<size_t>(batch), steps);
    return has_onednn && (mask == nullptr || right_padded_lengths(mask, batch, steps, lengths));
  }
};

// Per execution state: the bound oneDNN calls and the row lengths.
struct TrainingBinding final : KernelBinding {
  std::unique_ptr<PrimitiveSequence::Binding> main, weights;
  std::vector<int64_t> lengths;
};

const uint8_t* input_mask(const ExecContext& ctx) {
  return ctx.src_masks.empty() ? nullptr : ctx.src_masks[0];
}

template <typename T>
T* handle(const dnnl::memory& m) {
  return static_cast<T*>(m.get_data_handle());
}

// The oneDNN bias {1, 1, bias_gates, U} ldgo from the Keras bias (nullptr: none = zeros).
// reset_after GRU: u, r = input + recurrent bias, o = input bias, 4th = recurrent bias of h.
void fold_bias(const RecurrentTraining& k, const float* keras, float* dst) {
  const int64_t U = k.units, GU = k.gu();
  const int64_t n = onednn::rnn_bias_gates(k.kind) * U;
  if (keras == nullptr) {
    std::fill_n(dst, n, 0.f);
  } else if (k.kind == onednn::RnnKind::lbr_gru) {
    for (int64_t j = 0; j < 2 * U; ++j) dst[j] = keras[j] + keras[GU + j];
    for (int64_t j = 0; j < U; ++j) {
      dst[2 * U + j] = keras[2 * U + j];
      dst[3 * U + j] = keras[GU + 2 * U + j];
    }
  } else {
    std::copy_n(keras, n, dst);
  }
}

// The Keras bias gradient from oneDNN's diff bias, split back the way fold_bias folded.
void split_bias_gradient(const RecurrentTraining& k, const float* diff, float* keras) {
  const int64_t U = k.units, GU = k.gu();
  if (k.kind != onednn::RnnKind::lbr_gru) {
    std::copy_n(diff, GU, keras);
    return;
  }
  for (int64_t j = 0; j < 2 * U; ++j) keras[j] = keras[GU + j] = diff[j];
  for (int64_t j = 0; j < U; ++j) {
    keras[2 * U + j] = diff[2 * U + j];
    keras[GU + 2 * U + j] = diff[3 * U + j];
  }
}

// ---- the forward ----

class RecurrentTrainingForward final : public Kernel {
 public:
  RecurrentTraining k;
  PrimitiveSequence onednn_calls;  // weight reorders (where needed), then the forward
  int temp_bias = -1, temp_rows = -1;

  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override {
    auto b = std::make_unique<TrainingBinding>();
    if (!onednn_calls.empty()) b->main = onednn_calls.bind(buffers);
    b->lengths.reserve(static_cast<size_t>(k.batch));
    return b;
  }

  void execute(ExecContext& ctx) const override {
    auto& binding = static_cast<TrainingBinding&>(*ctx.binding);
    const uint8_t* mask = input_mask(ctx);
    ctx.stream.wait();
    if (k.onednn_path(mask, binding.lengths)) {
      fold_bias(k, k.cfg.use_bias ? handle<const float>(ctx.srcs[3]) : nullptr,
                handle<float>(ctx.temps[static_cast<size_t>(temp_bias)]));
      onednn_calls.run(ctx, *binding.main);
      ctx.stream.wait();
      write_outputs(ctx, binding.lengths);
    } else {
      if (temp_rows < 0)
        throw Error("internal: lstm/gru/simple_rnn training got a mask its input type lacks");
      const float* x = handle<const float>(ctx.srcs[0]);
      float* rows = handle<float>(ctx.temps[static_cast<size_t>(temp_rows)]);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (k.batch > 1)
      for (int64_t b = 0; b < k.batch; ++b)
        run_row(ctx, b, x, rows + b * (2 * k.units + 2 * k.gu()), mask);
    }
  }

  std::string impl_info() const override {
    return k.has_onednn ? onednn_calls.impl() + " (c++ for masks with holes)" : "c++";
  }

 private:
  // The output from dst_layer (saved 0): row b's state after step len-1 is final; padded
  // steps repeat it (zeros when len == 0 or with zero_output_for_mask).
  void write_outputs(ExecContext& ctx, const std::vector<int64_t>& lengths) const {
    const int64_t U = k.units, T = k.steps;
    const float* layer = handle<const float>(ctx.dsts[1]);
    float* dst = handle<float>(ctx.dsts[0]);
    const size_t row_bytes = static_cast<size_t>(U) * sizeof(float);
    for (int64_t b = 0; b < k.batch; ++b) {
      const int64_t len = lengths[static_cast<size_t>(b)];
      const bool zero = k.cfg.zero_output_for_mask && len < T;
      const float* last = len > 0 && !zero ? layer + (b * T + len - 1) * U : nullptr;
      const int64_t first = k.cfg.return_sequences ? 0 : T - 1;
      for (int64_t t = first; t < T; ++t) {
        float* out = dst + (k.cfg.return_sequences ? b * T + t : b) * U;
        const float* from = t < len ? layer + (b * T + t) * U : last;
        if (from != nullptr)
          std::memcpy(out, from, row_bytes);
        else
          std::memset(out, 0, row_bytes);
      }
    }
  }

  // One batch row of the plain path: the inference cell, keeping what the backward needs.
  void run_row(ExecContext& ctx, int64_t b, const float* src, float* scratch,
               const uint8_t* mask) const {
    const int64_t U = k.units, GU = k.gu(), S = k.record();
    ConstMatrixMap W(handle<const float>(ctx.srcs[1]), k.features, GU);
    ConstMatrixMap R(handle<const float>(ctx.srcs[2]), U, GU);
    const float* bias = k.cfg.use_bias ? handle<const float>(ctx.srcs[3]) : nullptr;
    const float* b_in = k.bias_in(bias);
    const float* b_rec = k.bias_rec(bias);
    float* saved = handle<float>(ctx.dsts[1]);
    float* dst = handle<float>(ctx.dsts[0]);
    float* h = scratch;
    float* c = h + U;
    float* gx = c + U;
    float* gh = gx + GU;
    Eigen::Map<RowVector> hv(h, U), gxv(gx, GU), ghv(gh, GU);
    std::fill_n(h, 2 * U, 0.f);
    for (int64_t t = 0; t < k.steps; ++t) {
      float* rec = saved + (b * k.steps + t) * S;
      float* pre = rec;
      float* extra = rec + GU;
      if (mask == nullptr || mask[b * k.steps + t] != 0) {
        Eigen::Map<const RowVector> x(src + (b * k.steps + t) * k.features, k.features);
        gxv.noalias() = x * W;
        if (b_in != nullptr) gxv += Eigen::Map<const RowVector>(b_in, GU);
        if (k.cfg.cell == RecurrentCell::simple_rnn) {
          ghv.noalias() = hv * R;
          for (int64_t j = 0; j < U; ++j) {
            pre[j] = gx[j] + gh[j];
            h[j] = k.act(pre[j]);
          }
          std::fill_n(extra, U, 0.f);
        } else if (k.cfg.cell == RecurrentCell::lstm) {
          ghv.noalias() = hv * R;
          for (int64_t g = 0; g < GU; ++g) pre[g] = gx[g] + gh[g];
          for (int64_t j = 0; j < U; ++j) {
            c[j] = k.rec_act(pre[U + j]) * c[j] + k.rec_act(pre[j]) * k.act(pre[2 * U + j]);
            h[j] = k.rec_act(pre[3 * U + j]) * k.act(c[j]);
          }
          std::copy_n(c, U, extra);
        } else if (k.cfg.reset_after) {
          ghv.noalias() = hv * R;
          if (b_rec != nullptr) ghv += Eigen::Map<const RowVector>(b_rec, GU);
          for (int64_t j = 0; j < U; ++j) {
            pre[j] = gx[j] + gh[j];
            pre[U + j] = gx[U + j] + gh[U + j];
            pre[2 * U + j] = gx[2 * U + j] + k.rec_act(pre[U + j]) * gh[2 * U + j];
            extra[j] = gh[2 * U + j];
            const float z = k.rec_act(pre[j]);
            h[j] = z * h[j] + (1.f - z) * k.act(pre[2 * U + j]);
          }
        } else {
          ghv.head(2 * U).noalias() = hv * R.leftCols(2 * U);
          for (int64_t j = 0; j < U; ++j) {
            pre[j] = gx[j] + gh[j];
            pre[U + j] = gx[U + j] + gh[U + j];
            c[j] = k.rec_act(pre[U + j]) * h[j];  // r * h
          }
          Eigen::Map<RowVector>(gh + 2 * U, U).noalias() =
              Eigen::Map<RowVector>(c, U) * R.rightCols(U);
          for (int64_t j = 0; j < U; ++j) {
            pre[2 * U + j] = gx[2 * U + j] + gh[2 * U + j];
            const float z = k.rec_act(pre[j]);
            h[j] = z * h[j] + (1.f - z) * k.act(pre[2 * U + j]);
          }
          std::fill_n(extra, U, 0.f);
        }
      } else {  // masked: the state carries over
        std::fill_n(pre, GU, 0.f);
        if (k.cfg.cell == RecurrentCell::lstm)
          std::copy_n(c, U, extra);
        else
          std::fill_n(extra, U, 0.f);
      }
      std::copy_n(h, U, rec + GU + U);
      if (k.cfg.return_sequences) {
        float* out = dst + (b * k.steps + t) * U;
        if (k.zeroed_output(mask, b, t))
          std::fill_n(out, U, 0.f);
        else
          std::copy_n(h, U, out);
      }
    }
    if (!k.cfg.return_sequences) {
      if (k.zeroed_output(mask, b, k.steps - 1))
        std::fill_n(dst + b * U, U, 0.f);
      else
        std::copy_n(h, U, dst + b * U);
    }
  }
};

// ---- the backward ----

class RecurrentTrainingBackward final : public Kernel {
 public:
  RecurrentTraining k;
  PrimitiveSequence onednn_calls;  // weight reorders, then the backward primitive
  PrimitiveSequence weight_grads;  // diff weights -> Keras layouts (not when frozen)
  int temp_bias = -1, temp_dbias = -1, temp_ddst = -1, temp_dw = -1, temp_dr = -1;
  int temp_da = -1, temp_dgh = -1, temp_hprev = -1, temp_rh = -1, temp_rows = -1;

  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override {
    auto b = std::make_unique<TrainingBinding>();
    if (!onednn_calls.empty()) b->main = onednn_calls.bind(buffers);
    if (!weight_grads.empty()) b->weights = weight_grads.bind(buffers);
    b->lengths.reserve(static_cast<size_t>(k.batch));
    return b;
  }

  void execute(ExecContext& ctx) const override {
    if (k.frozen && !k.needs_dx) return;
    auto& binding = static_cast<TrainingBinding&>(*ctx.binding);
    const uint8_t* mask = input_mask(ctx);
    ctx.stream.wait();
    if (k.onednn_path(mask, binding.lengths))
      run_onednn(ctx, binding);
    else if (temp_rows < 0)
      throw Error("internal: lstm/gru/simple_rnn training got a mask its input type lacks");
    else
      run_plain(ctx, mask);
  }

  std::string impl_info() const override {
    return k.has_onednn ? onednn_calls.impl() + " (c++ for masks with holes)" : "c++";
  }

 private:
  const float* src(const ExecContext& ctx, int i) const {
    return handle<const float>(ctx.srcs[static_cast<size_t>(i)]);
  }
  float* temp(const ExecContext& ctx, int i) const {
    return handle<float>(ctx.temps[static_cast<size_t>(i)]);
  }

  void run_onednn(ExecContext& ctx, TrainingBinding& binding) const {
    const BackwardArgs& a = k.args;
    fold_bias(k, k.cfg.use_bias ? src(ctx, a.weight(2)) : nullptr, temp(ctx, temp_bias));
    fill_diff_dst_layer(src(ctx, a.diff_output(0)), temp(ctx, temp_ddst), binding.lengths);
    // oneDNN 2.6 accumulates into diff weights and diff bias: zero every byte (padded strides).
    for (int t : {temp_dw, temp_dr, temp_dbias}) {
      const dnnl::memory& m = ctx.temps[static_cast<size_t>(t)];
      std::memset(m.get_data_handle(), 0, m.get_desc().get_size());
    }
    onednn_calls.run(ctx, *binding.main);
    if (k.frozen) return;
    weight_grads.run(ctx, *binding.weights);
    ctx.stream.wait();
    // One step from the zero state: d recurrent_kernel = h_{-1}^T da = 0. oneDNN 2.6.3 returns
    // nonzero values there for batch 1 (seen with lstm_backward), so it is written here.
    if (k.steps == 1) {
      const dnnl::memory& dr = ctx.dsts[static_cast<size_t>(k.args.diff_weight(1))];
      std::memset(dr.get_data_handle(), 0, dr.get_desc().get_size());
    }
    if (k.cfg.use_bias)
      split_bias_gradient(k, temp(ctx, temp_dbias),
                          handle<float>(ctx.dsts[static_cast<size_t>(a.diff_weight(2))]));
  }

  // d dst_layer from d output: row b's steps < len get theirs; the d outputs of padded steps
  // (copies of the state of step len-1) and, without return_sequences, d output itself go to
  // step len-1; everything else is zero. With zero_output_for_mask padded steps output zeros
  // (and so does a row without return_sequences whose last step is padded): nothing flows.
  void fill_diff_dst_layer(const float* dy, float* ddst,
                           const std::vector<int64_t>& lengths) const {
    const int64_t U = k.units, T = k.steps;
    std::fill_n(ddst, k.rows() * U, 0.f);
    for (int64_t b = 0; b < k.batch; ++b) {
      const int64_t len = lengths[static_cast<size_t>(b)];
      if (len == 0) continue;
      float* last = ddst + (b * T + len - 1) * U;
      const bool zero = k.cfg.zero_output_for_mask;
      if (!k.cfg.return_sequences) {
        if (!zero || len == T) std::copy_n(dy + b * U, U, last);
        continue;
      }
      std::copy_n(dy + b * T * U, len * U, ddst + b * T * U);
      if (zero) continue;
      for (int64_t t = len; t < T; ++t)
        for (int64_t j = 0; j < U; ++j) last[j] += dy[(b * T + t) * U + j];
    }
  }

  void run_plain(ExecContext& ctx, const uint8_t* mask) const {
    float* rows = temp(ctx, temp_rows);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (k.batch > 1)
    for (int64_t b = 0; b < k.batch; ++b) backward_row(ctx, b, rows + b * 4 * k.units, mask);
    plain_matmuls(ctx);
  }

  // The weight and input gradients from the per-step gate gradients of backward_row.
  void plain_matmuls(ExecContext& ctx) const {
    const BackwardArgs& a = k.args;
    const int64_t U = k.units, GU = k.gu(), N = k.rows();
    ConstMatrixMap da(temp(ctx, temp_da), N, GU);
    if (k.needs_dx)
      MatrixMap(handle<float>(ctx.dsts[static_cast<size_t>(a.diff_input(0))]), N, k.features)
          .noalias() = da * ConstMatrixMap(src(ctx, a.weight(0)), k.features, GU).transpose();
    if (k.frozen) return;
    ConstMatrixMap x(src(ctx, a.input(0)), N, k.features);
    ConstMatrixMap hprev(temp(ctx, temp_hprev), N, U);
    MatrixMap(handle<float>(ctx.dsts[static_cast<size_t>(a.diff_weight(0))]), k.features, GU)
        .noalias() = x.transpose() * da;
    MatrixMap dr(handle<float>(ctx.dsts[static_cast<size_t>(a.diff_weight(1))]), U, GU);
    const bool lbr = k.cfg.cell == RecurrentCell::gru && k.cfg.reset_after;
    const bool vanilla = k.cfg.cell == RecurrentCell::gru && !k.cfg.reset_after;
    ConstMatrixMap dgh(temp(ctx, temp_dgh), N, GU);
    if (lbr) {
      dr.noalias() = hprev.transpose() * dgh;
    } else if (vanilla) {
      dr.leftCols(2 * U).noalias() = hprev.transpose() * da.leftCols(2 * U);
      dr.rightCols(U).noalias() =
          ConstMatrixMap(temp(ctx, temp_rh), N, U).transpose() * da.rightCols(U);
    } else {
      dr.noalias() = hprev.transpose() * da;
    }
    if (!k.cfg.use_bias) return;
    float* db = handle<float>(ctx.dsts[static_cast<size_t>(a.diff_weight(2))]);
    Eigen::Map<RowVector>(db, GU).noalias() = da.colwise().sum();
    if (lbr) Eigen::Map<RowVector>(db + GU, GU).noalias() = dgh.colwise().sum();
  }

  void backward_row(ExecContext& ctx, int64_t b, float* scratch, const uint8_t* mask) const;
  void lstm_step(const float* rec, const float* c_prev, float* dh, float* dc, float* da) const;
  void gru_step(const float* rec, const float* h_prev, float* dh, float* da, float* dgh, float* rh,
                float* scratch, const ConstMatrixMap& R) const;
};

// d pre-activations of one valid LSTM step; dh, dc: in d h_t, d c_t; out d c_{t-1}, and dh
// still to be given its recurrent part (da R^T) by the caller.
void RecurrentTrainingBackward::lstm_step(const float* rec, const float* c_prev, float* dh,
                                          float* dc, float* da) const {
  const int64_t U = k.units, GU = k.gu();
  const float* pre = rec;
  const float* c = rec + GU;
  for (int64_t j = 0; j < U; ++j) {
    const float i = k.rec_act(pre[j]), f = k.rec_act(pre[U + j]);
    const float g = k.act(pre[2 * U + j]), o = k.rec_act(pre[3 * U + j]);
    const float dct = dc[j] + dh[j] * o * k.act_grad(c[j]);
    da[j] = dct * g * k.rec_act_grad(pre[j]);
    da[U + j] = dct * c_prev[j] * k.rec_act_grad(pre[U + j]);
    da[2 * U + j] = dct * i * k.act_grad(pre[2 * U + j]);
    da[3 * U + j] = dh[j] * k.act(c[j]) * k.rec_act_grad(pre[3 * U + j]);
    dc[j] = dct * f;
  }
}

// d pre-activations of one valid GRU step (da: input side, dgh: recurrent side for
// reset_after; rh: r * h_prev for reset_after=False); dh in d h_t, out d h_{t-1}.
void RecurrentTrainingBackward::gru_step(const float* rec, const float* h_prev, float* dh,
                                         float* da, float* dgh, float* rh, float* scratch,
                                         const ConstMatrixMap& R) const {
  const int64_t U = k.units;
  const float* pre = rec;
  const float* gh_h = rec + k.gu();
  float* dh_next = scratch;  // d h_{t-1}
  for (int64_t j = 0; j < U; ++j) {
    const float z = k.rec_act(pre[j]);
    const float hh = k.act(pre[2 * U + j]);
    da[j] = dh[j] * (h_prev[j] - hh) * k.rec_act_grad(pre[j]);
    da[2 * U + j] = dh[j] * (1.f - z) * k.act_grad(pre[2 * U + j]);
    dh_next[j] = dh[j] * z;
  }
  Eigen::Map<RowVector> dhn(dh_next, U);
  if (k.cfg.reset_after) {
    for (int64_t j = 0; j < U; ++j) {
      const float r = k.rec_act(pre[U + j]);
      da[U + j] = da[2 * U + j] * gh_h[j] * k.rec_act_grad(pre[U + j]);
      dgh[j] = da[j];
      dgh[U + j] = da[U + j];
      dgh[2 * U + j] = da[2 * U + j] * r;
    }
    dhn.noalias() += Eigen::Map<const RowVector>(dgh, k.gu()) * R.transpose();
  } else {
    float* drh = dh;  // d (r * h_prev); dh is consumed above
    Eigen::Map<RowVector>(drh, U).noalias() =
        Eigen::Map<const RowVector>(da + 2 * U, U) * R.rightCols(U).transpose();
    for (int64_t j = 0; j < U; ++j) {
      const float r = k.rec_act(pre[U + j]);
      da[U + j] = drh[j] * h_prev[j] * k.rec_act_grad(pre[U + j]);
      rh[j] = r * h_prev[j];
      dh_next[j] += drh[j] * r;
    }
    dhn.noalias() += Eigen::Map<const RowVector>(da, 2 * U) * R.leftCols(2 * U).transpose();
  }
  std::copy_n(dh_next, U, dh);
}

// Backpropagation through time for batch row b: per step the gate gradients (temps da, dgh),
// h_{t-1} (temp hprev) and r * h_{t-1} (temp rh); masked steps pass dh and dc through.
void RecurrentTrainingBackward::backward_row(ExecContext& ctx, int64_t b, float* scratch,
                                             const uint8_t* mask) const {
  const BackwardArgs& a = k.args;
  const int64_t U = k.units, GU = k.gu(), T = k.steps, S = k.record();
  ConstMatrixMap R(src(ctx, a.weight(1)), U, GU);
  const float* saved = src(ctx, a.saved_tensor(0));
  const float* dy = src(ctx, a.diff_output(0));
  float* dh = scratch;
  float* dc = dh + U;
  float* zeros = dc + U;
  float* step_scratch = zeros + U;
  std::fill_n(dh, 3 * U, 0.f);
  if (!k.cfg.return_sequences && !k.zeroed_output(mask, b, T - 1)) std::copy_n(dy + b * U, U, dh);
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t n = b * T + t;
    if (k.cfg.return_sequences && !k.zeroed_output(mask, b, t))
      for (int64_t j = 0; j < U; ++j) dh[j] += dy[n * U + j];
    const float* rec = saved + n * S;
    const float* prev = t > 0 ? saved + (n - 1) * S : nullptr;
    const float* h_prev = prev != nullptr ? prev + GU + U : zeros;
    float* da = temp(ctx, temp_da) + n * GU;
    float* dgh = temp(ctx, temp_dgh) + n * GU;
    float* rh = temp(ctx, temp_rh) + n * U;
    std::copy_n(h_prev, U, temp(ctx, temp_hprev) + n * U);
    std::fill_n(dgh, GU, 0.f);
    std::fill_n(rh, U, 0.f);
    if (mask != nullptr && mask[n] == 0) {  // h and c carried over: dh, dc pass through
      std::fill_n(da, GU, 0.f);
      continue;
    }
    if (k.cfg.cell == RecurrentCell::simple_rnn) {
      for (int64_t j = 0; j < U; ++j) da[j] = dh[j] * k.act_grad(rec[j]);
      Eigen::Map<RowVector>(dh, U).noalias() = Eigen::Map<const RowVector>(da, GU) * R.transpose();
    } else if (k.cfg.cell == RecurrentCell::lstm) {
      lstm_step(rec, prev != nullptr ? prev + GU : zeros, dh, dc, da);
      Eigen::Map<RowVector>(dh, U).noalias() = Eigen::Map<const RowVector>(da, GU) * R.transpose();
    } else {
      gru_step(rec, h_prev, dh, da, dgh, rh, step_scratch, R);
    }
  }
}

// The argument for a Keras weight (ldigo bytes) as the primitive wants `want`: the weight
// itself, or a temporary filled by a reorder appended to `calls`.
CallArg weight_arg(const CallArg& keras, const dnnl::memory::desc& keras_desc,
                   const dnnl::memory::desc& want, PrimitiveSequence& calls, KernelBuild& build) {
  if (want == keras_desc) return keras;
  const CallArg t = CallArg::temp(build.add_temp(want));
  calls.add(onednn::make_reorder_pd(keras_desc, want), {{DNNL_ARG_FROM, keras}, {DNNL_ARG_TO, t}},
            build);
  return t;
}

void add_onednn_forward(RecurrentTrainingForward& f, KernelBuild& build) {
  const RecurrentTraining& k = f.k;
  const onednn::RnnTrainingPrimitives& p = k.prims;
  const auto kw = onednn::rnn_keras_weights_desc(k.features, k.gates, k.units);
  const auto kr = onednn::rnn_keras_weights_desc(k.units, k.gates, k.units);
  f.temp_bias = build.add_temp(p.bias);
  const CallArg w = weight_arg(CallArg::src(1, kw), kw, p.weights_layer, f.onednn_calls, build);
  const CallArg r = weight_arg(CallArg::src(2, kr), kr, p.weights_iter, f.onednn_calls, build);
  f.onednn_calls.add(p.forward,
                     {{DNNL_ARG_SRC_LAYER, CallArg::src(0, p.src_layer)},
                      {DNNL_ARG_WEIGHTS_LAYER, w},
                      {DNNL_ARG_WEIGHTS_ITER, r},
                      {DNNL_ARG_BIAS, CallArg::temp(f.temp_bias)},
                      {DNNL_ARG_DST_LAYER, CallArg::dst(1, p.dst_layer)},
                      {DNNL_ARG_WORKSPACE, CallArg::dst(2, p.workspace)}},
                     build);
}

void add_onednn_backward(RecurrentTrainingBackward& g, KernelBuild& build) {
  const RecurrentTraining& k = g.k;
  const BackwardArgs& a = k.args;
  const onednn::RnnTrainingPrimitives& p = k.prims;
  const auto kw = onednn::rnn_keras_weights_desc(k.features, k.gates, k.units);
  const auto kr = onednn::rnn_keras_weights_desc(k.units, k.gates, k.units);
  g.temp_bias = build.add_temp(p.bias);
  g.temp_dbias = build.add_temp(p.bias);
  g.temp_ddst = build.add_temp(p.dst_layer);
  g.temp_dw = build.add_temp(p.diff_weights_layer);
  g.temp_dr = build.add_temp(p.diff_weights_iter);
  const CallArg w =
      weight_arg(CallArg::src(a.weight(0), kw), kw, p.bwd_weights_layer, g.onednn_calls, build);
  const CallArg r =
      weight_arg(CallArg::src(a.weight(1), kr), kr, p.bwd_weights_iter, g.onednn_calls, build);
  const CallArg dx = k.needs_dx ? CallArg::dst(a.diff_input(0), p.src_layer)
                                : CallArg::temp(build.add_temp(p.src_layer));
  g.onednn_calls.add(p.backward,
                     {{DNNL_ARG_SRC_LAYER, CallArg::src(a.input(0), p.src_layer)},
                      {DNNL_ARG_WEIGHTS_LAYER, w},
                      {DNNL_ARG_WEIGHTS_ITER, r},
                      {DNNL_ARG_BIAS, CallArg::temp(g.temp_bias)},
                      {DNNL_ARG_DST_LAYER, CallArg::src(a.saved_tensor(0), p.dst_layer)},
                      {DNNL_ARG_DIFF_DST_LAYER, CallArg::temp(g.temp_ddst)},
                      {DNNL_ARG_WORKSPACE, CallArg::src(a.saved_tensor(1), p.workspace)},
                      {DNNL_ARG_DIFF_SRC_LAYER, dx},
                      {DNNL_ARG_DIFF_WEIGHTS_LAYER, CallArg::temp(g.temp_dw)},
                      {DNNL_ARG_DIFF_WEIGHTS_ITER, CallArg::temp(g.temp_dr)},
                      {DNNL_ARG_DIFF_BIAS, CallArg::temp(g.temp_dbias)}},
                     build);
  if (k.frozen) return;
  g.weight_grads.add(onednn::make_reorder_pd(p.diff_weights_layer, kw),
                     {{DNNL_ARG_FROM, CallArg::temp(g.temp_dw)},
                      {DNNL_ARG_TO, CallArg::dst(a.diff_weight(0), kw)}},
                     build);
  if (k.steps == 1) return;  // see RecurrentTrainingBackward::run_onednn
  g.weight_grads.add(onednn::make_reorder_pd(p.diff_weights_iter, kr),
                     {{DNNL_ARG_FROM, CallArg::temp(g.temp_dr)},
                      {DNNL_ARG_TO, CallArg::dst(a.diff_weight(1), kr)}},
                     build);
}

RecurrentTraining training_shape(const TrainingKernelContext& ctx, const RecurrentConfig& config) {
  RecurrentTraining k;
  k.cfg = config;
  const Dims& in = ctx.inputs.at(0).shape;
  k.batch = in[0];
  k.steps = in[1];
  k.features = in[2];
  k.units = config.units;
  k.gates = config.gates();
  k.frozen = ctx.frozen;
  k.needs_dx = ctx.needs_input_gradient.at(0);
  k.act = activation_fn(config.activation);
  k.rec_act = activation_fn(config.recurrent_activation);
  k.act_grad = activation_grad_table().at(config.activation);
  k.rec_act_grad = activation_grad_table().at(config.recurrent_activation);
  k.has_onednn = config.cell != RecurrentCell::simple_rnn && config.activation == "tanh" &&
                 config.recurrent_activation == "sigmoid";
  k.plain_possible = !k.has_onednn || ctx.inputs[0].masked;
  k.kind = config.cell == RecurrentCell::lstm         ? onednn::RnnKind::lstm
           : config.cell == RecurrentCell::simple_rnn ? onednn::RnnKind::vanilla
           : config.reset_after                       ? onednn::RnnKind::lbr_gru
                                                      : onednn::RnnKind::gru;
  if (k.has_onednn)
    k.prims = onednn::make_rnn_training(k.kind, k.steps, k.batch, k.features, k.units);
  return k;
}

}  // namespace

void compile_recurrent_training(const TrainingKernelContext& ctx, const RecurrentConfig& config,
                                TrainingBuild& build) {
  const char* name = cell_name(config.cell);
  if (config.dropout > 0 || config.recurrent_dropout > 0)
    throw ctx.error(fmt::format(
        "{} with dropout or recurrent_dropout > 0 cannot be trained yet (Keras applies them in "
        "training; FusionGraph has no dropout inside recurrent cells): set both to 0, or put a "
        "dropout node before the layer",
        name));
  if (ctx.inputs.at(0).shape[1] == kDynamic || ctx.inputs.at(0).shape[0] == kDynamic)
    throw ctx.error(fmt::format("internal: {} training needs concrete shapes", name));
  RecurrentTraining k = training_shape(ctx, config);
  std::vector<dnnl::memory::desc> saved{
      onednn::plain_desc(Dims{k.rows() * (k.plain_possible ? k.record() : k.units)})};
  if (k.has_onednn)
    saved.push_back(onednn::plain_desc(
        Dims{std::max<int64_t>(1, static_cast<int64_t>((k.prims.workspace.get_size() + 3) / 4))}));
  build = start_training_build(ctx, saved);
  k.args = backward_args(ctx, saved.size());

  auto f = std::make_unique<RecurrentTrainingForward>();
  f->k = k;
  if (k.has_onednn) add_onednn_forward(*f, build.forward);
  if (k.plain_possible)
    f->temp_rows =
        build.forward.add_temp(onednn::plain_desc(Dims{k.batch, 2 * k.units + 2 * k.gu()}));
  build.forward.kernel = std::move(f);

  auto g = std::make_unique<RecurrentTrainingBackward>();
  g->k = k;
  if (k.has_onednn) add_onednn_backward(*g, build.backward);
  if (k.plain_possible) {
    KernelBuild& b = build.backward;
    g->temp_da = b.add_temp(onednn::plain_desc(Dims{k.rows(), k.gu()}));
    g->temp_dgh = b.add_temp(onednn::plain_desc(Dims{k.rows(), k.gu()}));
    g->temp_hprev = b.add_temp(onednn::plain_desc(Dims{k.rows(), k.units}));
    g->temp_rh = b.add_temp(onednn::plain_desc(Dims{k.rows(), k.units}));
    g->temp_rows = b.add_temp(onednn::plain_desc(Dims{k.batch, 4 * k.units}));
  }
  build.backward.kernel = std::move(g);
}

}  // namespace fg::layers
