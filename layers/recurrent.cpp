// The recurrent op family: lstm, gru and simple_rnn (see layers/recurrent.hpp and
// docs/ops/recurrent_embedding.md).
#include "layers/recurrent.hpp"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

float sigmoid_f(float x) {
  return 1.f / (1.f + std::exp(-x));
}
float softplus_f(float x) {
  return x > 20.f ? x : std::log1p(std::exp(x));
}

// Keras (tf.keras 2.x) activation formulas, elementwise. softmax / log_softmax are not
// elementwise and are rejected for recurrent layers.
const std::map<std::string, ActFn>& activation_table() {
  static const std::map<std::string, ActFn> table = {
      {"linear", [](float x) { return x; }},
      {"relu", [](float x) { return x > 0.f ? x : 0.f; }},
      {"relu6", [](float x) { return std::min(std::max(x, 0.f), 6.f); }},
      {"sigmoid", sigmoid_f},
      {"tanh", [](float x) { return std::tanh(x); }},
      {"hard_sigmoid", [](float x) { return std::min(std::max(0.2f * x + 0.5f, 0.f), 1.f); }},
      // Keras 3's hard_sigmoid, relu6(x + 3) / 6 (Keras 2 and TF.js: the one above)
      {"hard_sigmoid_keras3", [](float x) { return std::min(std::max(x / 6.f + 0.5f, 0.f), 1.f); }},
      {"elu", [](float x) { return x > 0.f ? x : std::expm1(x); }},
      {"selu",
       [](float x) {
         return 1.0507009873554805f * (x > 0.f ? x : 1.6732632423543772f * std::expm1(x));
       }},
      {"softplus", softplus_f},
      {"softsign", [](float x) { return x / (1.f + std::fabs(x)); }},
      {"swish", [](float x) { return x * sigmoid_f(x); }},
      {"silu", [](float x) { return x * sigmoid_f(x); }},
      {"gelu", [](float x) { return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f)); }},
      {"gelu_approximate",
       [](float x) {
         return 0.5f * x * (1.f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
       }},
      {"mish", [](float x) { return x * std::tanh(softplus_f(x)); }},
      {"exponential", [](float x) { return std::exp(x); }},
  };
  return table;
}

}  // namespace

ActFn activation_fn(const std::string& name) {
  return activation_table().at(name);
}

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;

// The oneDNN calls' bound arguments, and the row lengths of the mask (sized once).
struct RecurrentBinding final : KernelBinding {
  std::unique_ptr<PrimitiveSequence::Binding> onednn_call;
  std::unique_ptr<PrimitiveSequence::Binding> projection_call;  // lstm only
  std::vector<int64_t> lengths;
};

class RecurrentKernel final : public Kernel {
 public:
  RecurrentConfig cfg;
  int64_t batch = 0, steps = 0, features = 0, units = 0;
  int gates = 0;
  bool has_onednn = false;
  // lstm: the projected path (lstm_uses_projected_path) runs every call, not only those
  // lstm_forward cannot take (other activations, masks with holes).
  bool projected_first = false;
  onednn::RnnPrimitive prim;
  PrimitiveSequence onednn_call;      // prim with its arguments (weights in oneDNN layouts)
  PrimitiveSequence projection_call;  // lstm: the matmul x W + b of every row and step
  LstmLoop loop;                      // lstm: the recurrence after projection_call
  int temp_projection = -1;           // lstm: [batch * steps, 4 units]
  dnnl::memory kernel_plain, recurrent_plain;  // Keras layouts, for the plain path
  std::vector<float> bias_in, bias_rec;        // [G*U] each (bias_rec only for reset_after)
  ActFn act = nullptr, rec_act = nullptr;
  int temp_layer = -1, temp_cell = -1, temp_scratch = -1;

  int64_t scratch_per_row() const { return 2 * units + 2 * gates * units; }

  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override {
    auto binding = std::make_unique<RecurrentBinding>();
    if (!onednn_call.empty()) binding->onednn_call = onednn_call.bind(buffers);
    if (!projection_call.empty()) binding->projection_call = projection_call.bind(buffers);
    binding->lengths.reserve(static_cast<size_t>(batch));
    return binding;
  }

  void execute(ExecContext& ctx) const override {
    auto& binding = static_cast<RecurrentBinding&>(*ctx.binding);
    const uint8_t* mask = ctx.src_masks.empty() ? nullptr : ctx.src_masks[0];
    std::vector<int64_t>& lengths = binding.lengths;
    lengths.clear();
    const bool right_padded = mask == nullptr || right_padded_lengths(mask, batch, steps, lengths);
    bool full = true;
    for (int64_t len : lengths) full = full && len == steps;
    if (has_onednn && !projected_first && right_padded)
      run_onednn(ctx, *binding.onednn_call, (mask != nullptr && !full) ? &lengths : nullptr);
    else if (cfg.cell == RecurrentCell::lstm && binding.projection_call)
      run_projected(ctx, *binding.projection_call, mask);
    else if (cfg.cell == RecurrentCell::lstm)
      throw Error("internal: lstm got a mask with holes for an input inferred unmasked");
    else
      run_plain(ctx, mask);
  }

  std::string impl_info() const override {
    if (cfg.cell == RecurrentCell::lstm) {
      const std::string projected = "matmul " + projection_call.impl() + " + c++ loop";
      if (!has_onednn || projected_first) return projected;
      return projection_call.empty() ? prim.impl
                                     : prim.impl + " (" + projected + " for masks with holes)";
    }
    return has_onednn ? prim.impl + " (c++ for masks with holes)" : "c++";
  }

 private:
  void run_onednn(ExecContext& ctx, const PrimitiveSequence::Binding& call,
                  const std::vector<int64_t>* lengths) const {
    onednn_call.run(ctx, call);
    if (lengths == nullptr) return;
    const void* layer_ptr = cfg.return_sequences
                                ? ctx.dsts[0].get_data_handle()
                                : ctx.temps[static_cast<size_t>(temp_layer)].get_data_handle();
    // Right-padded rows: the state after step len-1 is final (later steps never feed back into
    // earlier ones), so read it from dst_layer; padded outputs repeat it (zeros if len == 0),
    // or are zeros with zero_output_for_mask (dst_layer holds oneDNN's unmasked steps there).
    ctx.stream.wait();
    const float* layer = static_cast<const float*>(layer_ptr);
    float* dst = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const size_t row_bytes = static_cast<size_t>(units) * sizeof(float);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = (*lengths)[static_cast<size_t>(b)];
      const bool zero = cfg.zero_output_for_mask && len < steps;
      const float* last = len > 0 && !zero ? layer + (b * steps + len - 1) * units : nullptr;
      if (cfg.return_sequences) {
        for (int64_t t = len; t < steps; ++t) {
          float* out = dst + (b * steps + t) * units;
          if (last != nullptr)
            std::memcpy(out, last, row_bytes);
          else
            std::memset(out, 0, row_bytes);
        }
      } else {
        float* out = dst + b * units;
        if (last != nullptr)
          std::memcpy(out, last, row_bytes);
        else
          std::memset(out, 0, row_bytes);
      }
    }
  }

  // lstm: the input projections of all rows and steps in one matmul, then each row's recurrence
  // (rows in parallel; one row is a chain of dependent small steps, best on one thread).
  void run_projected(ExecContext& ctx, const PrimitiveSequence::Binding& call,
                     const uint8_t* mask) const {
    projection_call.run(ctx, call);
    ctx.stream.wait();
    const float* projection = static_cast<const float*>(
        ctx.temps[static_cast<size_t>(temp_projection)].get_data_handle());
    float* dst = static_cast<float*>(ctx.dsts[0].get_data_handle());
    float* scratch =
        static_cast<float*>(ctx.temps[static_cast<size_t>(temp_scratch)].get_data_handle());
    const int64_t out_row = cfg.return_sequences ? steps * units : units;
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (batch > 1)
    for (int64_t b = 0; b < batch; ++b)
      run_lstm_row(loop, projection + b * steps * gates * units,
                   mask == nullptr ? nullptr : mask + b * steps, dst + b * out_row,
                   scratch + b * scratch_per_row());
  }

  void run_plain(ExecContext& ctx, const uint8_t* mask) const {
    ctx.stream.wait();
    const float* src = static_cast<const float*>(ctx.srcs[0].get_data_handle());
    float* dst = static_cast<float*>(ctx.dsts[0].get_data_handle());
    float* scratch =
        static_cast<float*>(ctx.temps[static_cast<size_t>(temp_scratch)].get_data_handle());
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (batch > 1)
    for (int64_t b = 0; b < batch; ++b) run_row(b, src, dst, scratch + b * scratch_per_row(), mask);
  }

  // One batch row of gru / simple_rnn (lstm: run_projected), exact Keras semantics: masked steps
  // keep the state and repeat the output (zeros with zero_output_for_mask).
  void run_row(int64_t b, const float* src, float* dst, float* scratch, const uint8_t* mask) const {
    const int64_t U = units, GU = gates * units;
    Eigen::Map<const RowMatrix> W(static_cast<const float*>(kernel_plain.get_data_handle()),
                                  features, GU);
    Eigen::Map<const RowMatrix> R(static_cast<const float*>(recurrent_plain.get_data_handle()), U,
                                  GU);
    Eigen::Map<const RowVector> b_in(bias_in.data(), GU), b_rec(bias_rec.data(), GU);
    float* h = scratch;
    float* aux = h + U;  // GRU (reset_after=False): r * h
    float* gx = aux + U;
    float* gh = gx + GU;
    Eigen::Map<RowVector> hv(h, U), auxv(aux, U), gxv(gx, GU), ghv(gh, GU);
    hv.setZero();
    auxv.setZero();
    for (int64_t t = 0; t < steps; ++t) {
      const bool valid = mask == nullptr || mask[b * steps + t] != 0;
      if (valid) {
        Eigen::Map<const RowVector> x(src + (b * steps + t) * features, features);
        gxv.noalias() = x * W;
        gxv += b_in;
        if (cfg.cell == RecurrentCell::simple_rnn) {
          ghv.noalias() = hv * R;
          for (int64_t j = 0; j < U; ++j) h[j] = act(gx[j] + gh[j]);
        } else if (cfg.reset_after) {
          ghv.noalias() = hv * R;
          ghv += b_rec;
          for (int64_t j = 0; j < U; ++j) {
            const float z = rec_act(gx[j] + gh[j]);
            const float r = rec_act(gx[U + j] + gh[U + j]);
            const float hh = act(gx[2 * U + j] + r * gh[2 * U + j]);
            h[j] = z * h[j] + (1.f - z) * hh;
          }
        } else {
          ghv.head(2 * U).noalias() = hv * R.leftCols(2 * U);
          for (int64_t j = 0; j < U; ++j) {
            gx[j] = rec_act(gx[j] + gh[j]);                  // z
            aux[j] = rec_act(gx[U + j] + gh[U + j]) * h[j];  // r * h
          }
          ghv.tail(U).noalias() = auxv * R.rightCols(U);
          for (int64_t j = 0; j < U; ++j) {
            const float z = gx[j];
            const float hh = act(gx[2 * U + j] + gh[2 * U + j]);
            h[j] = z * h[j] + (1.f - z) * hh;
          }
        }
      }
      if (cfg.return_sequences) {
        float* out = dst + (b * steps + t) * U;
        if (valid || !cfg.zero_output_for_mask)
          std::memcpy(out, h, static_cast<size_t>(U) * sizeof(float));
        else
          std::memset(out, 0, static_cast<size_t>(U) * sizeof(float));
      }
    }
    if (!cfg.return_sequences) {
      const bool last_masked = mask != nullptr && mask[b * steps + steps - 1] == 0;
      if (cfg.zero_output_for_mask && last_masked)
        std::memset(dst + b * U, 0, static_cast<size_t>(U) * sizeof(float));
      else
        std::memcpy(dst + b * U, h, static_cast<size_t>(U) * sizeof(float));
    }
  }
};

// The oneDNN eltwise algorithm of simple_rnn's activation, if vanilla_rnn_forward has it.
bool vanilla_activation(const std::string& name, dnnl::algorithm& alg) {
  if (name == "tanh")
    alg = dnnl::algorithm::eltwise_tanh;
  else if (name == "relu")
    alg = dnnl::algorithm::eltwise_relu;
  else if (name == "sigmoid")
    alg = dnnl::algorithm::eltwise_logistic;
  else
    return false;
  return true;
}

// The oneDNN lstm_forward / gru_forward / lbr_gru_forward / vanilla_rnn_forward call of the
// kernel `k`, its weights in oneDNN's layouts, and the temporaries it writes.
void add_onednn_call(const KernelContext& ctx, KernelBuild& build, RecurrentKernel& k,
                     const dnnl::memory::desc& keras_kernel,
                     const dnnl::memory::desc& keras_recurrent) {
  const RecurrentConfig& config = k.cfg;
  const auto kind = config.cell == RecurrentCell::lstm         ? onednn::RnnKind::lstm
                    : config.cell == RecurrentCell::simple_rnn ? onednn::RnnKind::vanilla
                    : config.reset_after                       ? onednn::RnnKind::lbr_gru
                                                               : onednn::RnnKind::gru;
  dnnl::algorithm alg = dnnl::algorithm::eltwise_tanh;
  if (kind == onednn::RnnKind::vanilla) vanilla_activation(config.activation, alg);
  k.prim = onednn::make_rnn_forward(kind, k.steps, k.batch, k.features, k.units,
                                    !config.return_sequences, ctx.engine, alg);
  const onednn::RnnPrimitive& prim = k.prim;
  dnnl::memory bias = ctx.constant("onednn_bias", prim.bias, [&]() {
    dnnl::memory m(prim.bias, ctx.engine);
    float* p = static_cast<float*>(m.get_data_handle());
    const int64_t U = k.units;
    if (kind == onednn::RnnKind::lbr_gru) {
      // u, r: input + recurrent bias; o: input bias; 4th gate: recurrent bias of the candidate.
      for (int64_t j = 0; j < 2 * U; ++j) p[j] = k.bias_in[j] + k.bias_rec[j];
      for (int64_t j = 0; j < U; ++j) {
        p[2 * U + j] = k.bias_in[2 * U + j];
        p[3 * U + j] = k.bias_rec[2 * U + j];
      }
    } else {
      std::copy(k.bias_in.begin(), k.bias_in.end(), p);
    }
    return m;
  });
  std::vector<std::pair<int, CallArg>> args{
      {DNNL_ARG_SRC_LAYER, CallArg::src(0, prim.src_layer)},
      {DNNL_ARG_WEIGHTS_LAYER,
       CallArg::constant(ctx.weight_memory("kernel", keras_kernel, prim.weights_layer))},
      {DNNL_ARG_WEIGHTS_ITER, CallArg::constant(ctx.weight_memory(
                                  "recurrent_kernel", keras_recurrent, prim.weights_iter))},
      {DNNL_ARG_BIAS, CallArg::constant(bias)}};
  if (config.return_sequences) {
    args.push_back({DNNL_ARG_DST_LAYER, CallArg::dst(0, prim.dst_layer)});
  } else {  // the sequence goes to a temporary, the last state to the output
    k.temp_layer = build.add_temp(onednn::plain_desc(Dims{k.batch, k.steps, k.units}));
    args.push_back({DNNL_ARG_DST_LAYER, CallArg::temp(k.temp_layer, prim.dst_layer)});
    args.push_back({DNNL_ARG_DST_ITER, CallArg::dst(0, prim.dst_iter)});
  }
  if (!prim.dst_iter_c.is_zero()) {
    k.temp_cell = build.add_temp(prim.dst_iter_c);
    args.push_back({DNNL_ARG_DST_ITER_C, CallArg::temp(k.temp_cell)});
  }
  // The user scratchpad is the step's, as for every primitive.
  build.scratchpad_bytes = std::max(build.scratchpad_bytes, prim.scratchpad.get_size());
  k.onednn_call.add(prim.prim, std::move(args));
}

// lstm's projected path: the matmul [batch * steps, features] x kernel [features, 4 units] +
// bias into a temporary, and the loop's constants.
void add_projection_call(const KernelContext& ctx, KernelBuild& build, RecurrentKernel& k) {
  const int64_t rows = k.batch * k.steps, GU = k.gates * k.units;
  const auto src = onednn::plain_desc(Dims{rows, k.features});
  const auto weights = onednn::plain_desc(Dims{k.features, GU});
  const auto bias_desc = onednn::plain_desc(Dims{1, GU});
  const auto dst = onednn::plain_desc(Dims{rows, GU});
  dnnl::memory bias = ctx.constant("projection_bias", bias_desc, [&]() {
    dnnl::memory m(bias_desc, ctx.engine);
    std::copy(k.bias_in.begin(), k.bias_in.end(), static_cast<float*>(m.get_data_handle()));
    return m;
  });
  k.temp_projection = build.add_temp(dst);
  k.projection_call.add(
      onednn::make_matmul_pd(src, weights, bias_desc, dst),
      {{DNNL_ARG_SRC, CallArg::src(0, src)},
       {DNNL_ARG_WEIGHTS, CallArg::constant(ctx.weight_memory("kernel", weights, weights))},
       {DNNL_ARG_BIAS, CallArg::constant(bias)},
       {DNNL_ARG_DST, CallArg::temp(k.temp_projection)}},
      build);
  k.loop.steps = k.steps;
  k.loop.units = k.units;
  k.loop.recurrent = static_cast<const float*>(k.recurrent_plain.get_data_handle());
  k.loop.act = k.act;
  k.loop.rec_act = k.rec_act;
  k.loop.tanh_sigmoid = k.cfg.activation == "tanh" && k.cfg.recurrent_activation == "sigmoid";
  k.loop.return_sequences = k.cfg.return_sequences;
  k.loop.zero_output_for_mask = k.cfg.zero_output_for_mask;
}

}  // namespace

bool lstm_uses_projected_path(int64_t batch, int64_t units) {
  // Measured (docs/ops/recurrent_embedding.md): the projected path's recurrence costs about
  // batch * units * 4 units FMAs per step on one core per row, lstm_forward's mostly a fixed
  // per-step overhead until batch * units^2 reaches ~32 * 32^2; beyond 128 units the recurrent
  // kernel (units * 4 units floats) leaves the L2 cache and oneDNN's blocked GEMM wins.
  return units <= 128 && batch * units * units <= 32 * 32 * 32;
}

const char* cell_name(RecurrentCell cell) {
  switch (cell) {
    case RecurrentCell::lstm:
      return "lstm";
    case RecurrentCell::gru:
      return "gru";
    case RecurrentCell::simple_rnn:
      return "simple_rnn";
  }
  return "?";
}

bool right_padded_lengths(const uint8_t* mask, int64_t batch, int64_t steps,
                          std::vector<int64_t>& lengths) {
  lengths.assign(static_cast<size_t>(batch), 0);
  for (int64_t b = 0; b < batch; ++b) {
    const uint8_t* row = mask + b * steps;
    int64_t len = 0;
    while (len < steps && row[len] != 0) ++len;
    for (int64_t t = len; t < steps; ++t)
      if (row[t] != 0) return false;
    lengths[static_cast<size_t>(b)] = len;
  }
  return true;
}

namespace {

bool recurrent_activation_known(const std::string& name) {
  return activation_table().count(name) != 0;
}

void parse_recurrent(AttrReader& attrs, RecurrentConfig& config) {
  // Read every key before validating: the compiler reports unread keys of a failed parse as
  // misspellings.
  config.units = attrs.get_int("units");
  config.return_sequences = attrs.get_bool("return_sequences", false);
  config.activation = attrs.get_string("activation", "tanh");
  const bool gated = config.cell != RecurrentCell::simple_rnn;
  if (gated) config.recurrent_activation = attrs.get_string("recurrent_activation", "sigmoid");
  config.use_bias = attrs.get_bool("use_bias", true);
  config.dropout = attrs.get_float("dropout", 0.0);
  config.recurrent_dropout = attrs.get_float("recurrent_dropout", 0.0);
  config.zero_output_for_mask = attrs.get_bool("zero_output_for_mask", false);

  if (config.units < 1)
    throw attrs.error(
        "units", fmt::format("attribute 'units' must be a positive integer, got {}", config.units));
  // The core's activation list plus hard_sigmoid / exponential (older Keras LSTM/GRU used
  // hard_sigmoid as recurrent_activation); softmax and log_softmax are not elementwise.
  for (const char* key : {"activation", "recurrent_activation"}) {
    const bool main = std::string(key) == "activation";
    if (!main && !gated) continue;
    const std::string& name = main ? config.activation : config.recurrent_activation;
    if (recurrent_activation_known(name)) continue;
    attrs.get_activation(key,
                         main ? "tanh" : "sigmoid");  // throws "unknown activation" + did-you-mean
    std::vector<std::string> known;
    for (const auto& [k, fn] : activation_table()) known.push_back(k);
    throw attrs.error(key,
                      fmt::format("activation '{}' is not elementwise and cannot be used inside a "
                                  "recurrent cell; use one of {}",
                                  name, quoted_list(known)));
  }
  for (const char* key : {"dropout", "recurrent_dropout"}) {
    const double rate = std::string(key) == "dropout" ? config.dropout : config.recurrent_dropout;
    if (!(rate >= 0.0 && rate < 1.0))
      throw attrs.error(
          key, fmt::format("{} must be in [0, 1), got {} (it is ignored at inference)", key, rate));
  }
}

std::vector<TensorType> infer_recurrent(const InferContext& ctx, const RecurrentConfig& config) {
  ctx.expect_inputs(1);
  ctx.expect_rank(0, 3);
  ctx.expect_dtype(0, DType::f32);
  const TensorType& in = ctx.input(0);
  if (in.shape[2] == kDynamic)
    throw ctx.input_error(
        0, fmt::format("{} needs a known feature size (last axis) to size its kernel, got {}",
                       cell_name(config.cell), format_shape(in.shape)));
  TensorType out;
  out.dtype = DType::f32;
  if (config.return_sequences) {
    out.shape = {in.shape[0], in.shape[1], config.units};
    out.masked = in.masked;
  } else {
    out.shape = {in.shape[0], config.units};
  }
  return {out};
}

std::vector<WeightSpec> recurrent_weights(const InferContext& ctx, const RecurrentConfig& config) {
  const Dim features = ctx.input(0).shape.at(2);
  const Dim gu = dim_mul(config.gates(), config.units);
  std::vector<WeightSpec> specs;
  WeightSpec kernel{"kernel", {features, gu}, Init::glorot_uniform, features, gu};
  WeightSpec recurrent{"recurrent_kernel", {config.units, gu}, Init::orthogonal};
  specs.push_back(kernel);
  specs.push_back(recurrent);
  if (config.use_bias) {
    if (config.cell == RecurrentCell::lstm)
      specs.push_back({"bias", {gu}, config.unit_forget_bias ? Init::lstm_bias : Init::zeros});
    else if (config.cell == RecurrentCell::gru && config.reset_after)
      specs.push_back({"bias", {2, gu}, Init::zeros});
    else
      specs.push_back({"bias", {gu}, Init::zeros});
  }
  return specs;
}

double recurrent_flops(const InferContext& ctx, const RecurrentConfig& config) {
  const Dims& s = ctx.input(0).shape;
  if (s.size() != 3 || s[1] == kDynamic || s[2] == kDynamic) return 0.0;
  const double gu = static_cast<double>(config.gates()) * static_cast<double>(config.units);
  return 2.0 * static_cast<double>(s[1]) *
         (static_cast<double>(s[2]) * gu + static_cast<double>(config.units) * gu);
}

KernelBuild compile_recurrent(const KernelContext& ctx, const RecurrentConfig& config) {
  KernelBuild build = ctx.start_build();
  auto k = std::make_unique<RecurrentKernel>();
  k->cfg = config;
  const Dims& in = ctx.inputs.at(0).shape;
  // The kernel reads and writes the Keras row-major bytes (oneDNN ntc / ldnc views of them).
  if (ctx.input_descs.at(0) != onednn::plain_desc(ctx.inputs.at(0)))
    throw ctx.error("internal: lstm/gru/simple_rnn expect a plain (row-major) input layout");
  k->batch = in[0];
  k->steps = in[1];
  k->features = in[2];
  k->units = config.units;
  k->gates = config.gates();
  const int64_t GU = k->gates * k->units;
  auto check_shape = [&](const std::string& param, const Dims& want) {
    const Tensor& w = ctx.weight(param);
    if (w.shape() != want)
      throw ctx.error(fmt::format("weight '{}.{}' has shape {}, expected {}", ctx.node.name, param,
                                  format_shape(w.shape()), format_shape(want)));
    return w.data<float>();
  };
  check_shape("kernel", {k->features, GU});
  check_shape("recurrent_kernel", {k->units, GU});
  const auto keras_kernel = onednn::rnn_keras_weights_desc(k->features, k->gates, k->units);
  const auto keras_recurrent = onednn::rnn_keras_weights_desc(k->units, k->gates, k->units);
  k->kernel_plain = ctx.weight_memory("kernel", keras_kernel, keras_kernel);
  k->recurrent_plain = ctx.weight_memory("recurrent_kernel", keras_recurrent, keras_recurrent);
  k->bias_in.assign(static_cast<size_t>(GU), 0.f);
  k->bias_rec.assign(static_cast<size_t>(GU), 0.f);
  if (config.use_bias) {
    const bool two_rows = config.cell == RecurrentCell::gru && config.reset_after;
    const float* b = check_shape("bias", two_rows ? Dims{2, GU} : Dims{GU});
    std::copy(b, b + GU, k->bias_in.begin());
    if (two_rows) std::copy(b + GU, b + 2 * GU, k->bias_rec.begin());
  }
  k->act = activation_fn(config.activation);
  k->rec_act = activation_fn(config.recurrent_activation);

  // oneDNN's LSTM/GRU cells are fixed to sigmoid gates and tanh candidate/output; its vanilla
  // RNN has tanh, relu and sigmoid (logistic).
  dnnl::algorithm alg = dnnl::algorithm::eltwise_tanh;
  k->has_onednn = config.cell == RecurrentCell::simple_rnn
                      ? vanilla_activation(config.activation, alg)
                      : config.activation == "tanh" && config.recurrent_activation == "sigmoid";
  if (config.cell == RecurrentCell::lstm) {
    k->projected_first = lstm_uses_projected_path(k->batch, k->units);
    // With lstm_forward, the projected path (and its [batch * steps, 4 units] temporary) only
    // serves masks with holes, so only a masked input needs it.
    if (k->projected_first || !k->has_onednn || ctx.inputs.at(0).masked)
      add_projection_call(ctx, build, *k);
  }
  if (k->has_onednn && !k->projected_first)
    add_onednn_call(ctx, build, *k, keras_kernel, keras_recurrent);
  k->temp_scratch = build.add_temp(onednn::plain_desc(Dims{k->batch, k->scratch_per_row()}));
  build.kernel = std::move(k);
  return build;
}

// keras.layers.LSTM, GRU and SimpleRNN: one layer, left to right, zero initial state. GRU's
// reset_after=True maps to oneDNN's linear-before-reset GRU, reset_after=False to the vanilla
// GRU; SimpleRNN to oneDNN's vanilla RNN.
class Recurrent final : public Op {
 public:
  explicit Recurrent(RecurrentCell cell) { config_.cell = cell; }

  void parse(AttrReader& attrs) override {
    if (config_.cell == RecurrentCell::lstm)
      config_.unit_forget_bias = attrs.get_bool("unit_forget_bias", true);
    else if (config_.cell == RecurrentCell::gru)
      config_.reset_after = attrs.get_bool("reset_after", true);
    else
      config_.reset_after = false;
    parse_recurrent(attrs, config_);
  }
  std::vector<TensorType> infer(const InferContext& ctx) const override {
    return infer_recurrent(ctx, config_);
  }
  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    return recurrent_weights(ctx, config_);
  }
  double flops_per_sample(const InferContext& ctx, const std::vector<TensorType>&) const override {
    return recurrent_flops(ctx, config_);
  }
  bool supports_masking() const override { return true; }
  KernelBuild compile(const KernelContext& ctx) const override {
    return compile_recurrent(ctx, config_);
  }
  bool has_gradient() const override { return true; }
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    compile_recurrent_training(ctx, config_, build);
  }

 private:
  RecurrentConfig config_;
};

}  // namespace

OpInfo lstm_op() {
  return {"lstm", [] { return std::make_unique<Recurrent>(RecurrentCell::lstm); },
          "long short-term memory layer (oneDNN lstm_forward, or matmul + C++ recurrence for small "
          "batch x units), Keras LSTM"};
}

OpInfo gru_op() {
  return {"gru", [] { return std::make_unique<Recurrent>(RecurrentCell::gru); },
          "gated recurrent unit layer (oneDNN gru_forward / lbr_gru_forward), Keras GRU"};
}

OpInfo simple_rnn_op() {
  return {"simple_rnn", [] { return std::make_unique<Recurrent>(RecurrentCell::simple_rnn); },
          "fully-connected recurrent layer (oneDNN vanilla_rnn_forward), Keras SimpleRNN"};
}

}  // namespace fg::layers
