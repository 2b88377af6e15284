// layer_normalization (Keras LayerNormalization): per sample, mean and variance over the
// normalized axes, y = gamma * (x - mean) / sqrt(var + epsilon) + beta.
// `axis` is an int or a list; a list must be exactly the trailing axes (e.g. [-2, -1]), so the
// normalized elements are contiguous and oneDNN layer_normalization_forward runs on a
// {rows, normalized size} view. A single non-last int axis runs as plain C++ (oneDNN has no
// layer normalization over a middle dim).
//
// Training: plain C++ with OpenMP on the [outer, c, inner] view (the trailing case is inner =
// 1), double accumulation. The forward saves each row's mean and 1 / sqrt(var + epsilon); the
// backward gives, per row with g = dy * gamma and xhat = (x - mean) * rstd,
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
// and over all rows d gamma = sum dy * xhat, d beta = sum dy.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// The [outer, c, inner] view of a layer normalization: row r = (o, i) normalizes the c
// elements o * c * inner + k * inner + i.
struct LayerNormView {
  Dim outer = 1, c = 1, inner = 1;
  int64_t rows() const { return outer * inner; }
  int64_t at(int64_t r, Dim k) const { return (r / inner) * c * inner + k * inner + r % inner; }
};

// Training forward: y and the saved per-row mean (dst 1) and rstd (dst 2).
class LayerNormTrainingForwardKernel final : public Kernel {
 public:
  LayerNormTrainingForwardKernel(LayerNormView v, double epsilon, int gamma, int beta)
      : v_(v), epsilon_(epsilon), gamma_(gamma), beta_(beta) {}

  void execute(ExecContext& ctx) const override {
    const auto* x = static_cast<const float*>(ctx.srcs[0].get_data_handle());
    const float* gamma =
        gamma_ < 0 ? nullptr : static_cast<const float*>(ctx.srcs[gamma_].get_data_handle());
    const float* beta =
        beta_ < 0 ? nullptr : static_cast<const float*>(ctx.srcs[beta_].get_data_handle());
    auto* y = static_cast<float*>(ctx.dsts[0].get_data_handle());
    auto* mean_out = static_cast<float*>(ctx.dsts[1].get_data_handle());
    auto* rstd_out = static_cast<float*>(ctx.dsts[2].get_data_handle());
    const int64_t rows = v_.rows();
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (Dim k = 0; k < v_.c; ++k) mean += x[v_.at(r, k)];
      mean /= static_cast<double>(v_.c);
      for (Dim k = 0; k < v_.c; ++k) {
        const double d = x[v_.at(r, k)] - mean;
        var += d * d;
      }
      var /= static_cast<double>(v_.c);
      const double rstd = 1.0 / std::sqrt(var + epsilon_);
      for (Dim k = 0; k < v_.c; ++k) {
        double t = (x[v_.at(r, k)] - mean) * rstd;
        if (gamma) t *= gamma[k];
        if (beta) t += beta[k];
        y[v_.at(r, k)] = static_cast<float>(t);
      }
      mean_out[r] = static_cast<float>(mean);
      rstd_out[r] = static_cast<float>(rstd);
    }
  }

 private:
  LayerNormView v_;
  double epsilon_;
  int gamma_, beta_;
};

// Training backward (see the top of the file). Indices follow kernels/training_kernel.hpp;
// -1 = not computed.
class LayerNormBackwardKernel final : public Kernel {
 public:
  struct Args {
    int x = 0, gamma = -1, mean = 0, rstd = 0, dy = 0;  // srcs
    int dx = -1, dgamma = -1, dbeta = -1;               // dsts
  };
  LayerNormBackwardKernel(LayerNormView v, Args args) : v_(v), a_(args) {}

  void execute(ExecContext& ctx) const override {
    const auto src = [&](int i) {
      return i < 0 ? nullptr : static_cast<const float*>(ctx.srcs[i].get_data_handle());
    };
    const auto dst = [&](int i) {
      return i < 0 ? nullptr : static_cast<float*>(ctx.dsts[i].get_data_handle());
    };
    const float *x = src(a_.x), *gamma = src(a_.gamma), *mean = src(a_.mean), *rstd = src(a_.rstd),
                *dy = src(a_.dy);
    if (float* dx = dst(a_.dx)) input_gradient(x, gamma, mean, rstd, dy, dx, ctx.threads);
    float *dgamma = dst(a_.dgamma), *dbeta = dst(a_.dbeta);
    if (!dgamma && !dbeta) return;
      // Each k is summed over every row, in row order, by one thread.
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (Dim k = 0; k < v_.c; ++k) {
      float sum_gamma = 0, sum_beta = 0;
      for (int64_t r = 0; r < v_.rows(); ++r) {
        const int64_t at = v_.at(r, k);
        sum_gamma += dy[at] * (x[at] - mean[r]) * rstd[r];
        sum_beta += dy[at];
      }
      if (dgamma) dgamma[k] = sum_gamma;
      if (dbeta) dbeta[k] = sum_beta;
    }
  }

 private:
  void input_gradient(const float* x, const float* gamma, const float* mean, const float* rstd,
                      const float* dy, float* dx, int threads) const {
    const int64_t rows = v_.rows();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double sum_g = 0, sum_gx = 0;
      for (Dim k = 0; k < v_.c; ++k) {
        const int64_t at = v_.at(r, k);
        const double g = dy[at] * (gamma ? gamma[k] : 1.0f);
        sum_g += g;
        sum_gx += g * (x[at] - mean[r]) * rstd[r];
      }
      const double n = static_cast<double>(v_.c);
      for (Dim k = 0; k < v_.c; ++k) {
        const int64_t at = v_.at(r, k);
        const double g = dy[at] * (gamma ? gamma[k] : 1.0f);
        const double xhat = (x[at] - mean[r]) * rstd[r];
        dx[at] = static_cast<float>(rstd[r] * (g - sum_g / n - xhat * sum_gx / n));
      }
    }
  }

  LayerNormView v_;
  Args a_;
};

// A single non-last axis (oneDNN normalizes the last dim only): plain C++ over the
// [outer, c, inner] view, double accumulation; gamma/beta are {c}.
class MiddleAxisLayerNormKernel final : public Kernel {
 public:
  MiddleAxisLayerNormKernel(Dim outer, Dim c, Dim inner, double epsilon, dnnl::memory gamma,
                            dnnl::memory beta)
      : outer_(outer),
        c_(c),
        inner_(inner),
        epsilon_(epsilon),
        gamma_mem_(gamma),
        beta_mem_(beta),
        gamma_(gamma ? static_cast<const float*>(gamma.get_data_handle()) : nullptr),
        beta_(beta ? static_cast<const float*>(beta.get_data_handle()) : nullptr) {}

  void execute(ExecContext& ctx) const override {
    const auto* src = static_cast<const float*>(ctx.srcs[0].get_data_handle());
    auto* dst = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const int64_t n = outer_ * inner_;
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const int64_t o = r / inner_, i = r % inner_;
      const float* x = src + o * c_ * inner_ + i;
      float* y = dst + o * c_ * inner_ + i;
      double mean = 0, var = 0;
      for (Dim k = 0; k < c_; ++k) mean += x[k * inner_];
      mean /= static_cast<double>(c_);
      for (Dim k = 0; k < c_; ++k) {
        const double d = x[k * inner_] - mean;
        var += d * d;
      }
      var /= static_cast<double>(c_);
      const double inv = 1.0 / std::sqrt(var + epsilon_);
      for (Dim k = 0; k < c_; ++k) {
        double v = (x[k * inner_] - mean) * inv;
        if (gamma_) v *= gamma_[k];
        if (beta_) v += beta_[k];
        y[k * inner_] = static_cast<float>(v);
      }
    }
  }

 private:
  Dim outer_, c_, inner_;
  double epsilon_;
  dnnl::memory gamma_mem_, beta_mem_;  // keep the cached weights alive
  const float* gamma_;
  const float* beta_;
};

class LayerNormalization final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    if (attrs.has("axis")) {
      try {
        axes_ = {attrs.get_int("axis")};
      } catch (const Error&) {
        axes_ = attrs.get_int_list("axis");
        if (axes_.empty())
          throw attrs.error("axis", "axis must be an int or a non-empty list of ints");
      }
    }
    epsilon_ = attrs.get_float("epsilon", 0.001);
    if (!(epsilon_ > 0))
      throw attrs.error("epsilon", fmt::format("epsilon must be > 0, got {}", epsilon_));
    center_ = attrs.get_bool("center", true);
    scale_ = attrs.get_bool("scale", true);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    ctx.expect_rank_at_least(0, 2);
    ctx.expect_dtype(0, DType::f32);
    first_axis(ctx);        // validates the axes
    return {ctx.input(0)};  // the mask (if any) passes on
  }

  std::vector<WeightSpec> weights(const InferContext& ctx) const override {
    const Dims& shape = ctx.input(0).shape;
    const int first = first_axis(ctx);
    Dims param = first < 0 ? Dims{shape[-first]} : Dims(shape.begin() + first, shape.end());
    const int param_axis0 = first < 0 ? -first : first;
    for (size_t i = 0; i < param.size(); ++i)
      if (param[i] == kDynamic)
        throw ctx.input_error(0,
                              fmt::format("layer_normalization needs a known size on axis {} to "
                                          "create its weights, got input shape {}",
                                          param_axis0 + static_cast<int>(i), format_shape(shape)));
    std::vector<WeightSpec> specs;
    if (scale_) specs.push_back({"gamma", param, Init::ones});
    if (center_) specs.push_back({"beta", param, Init::zeros});
    return specs;
  }

  bool supports_masking() const override { return true; }

  bool has_gradient() const override { return true; }

  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const LayerNormView v = view(ctx.inputs[0].shape);
    const auto row_stat = onednn::plain_desc(Dims{v.rows()});
    build = start_training_build(ctx, {row_stat, row_stat});
    const BackwardArgs a = backward_args(ctx, 2);
    const int gamma = scale_ ? 0 : -1, beta = center_ ? (scale_ ? 1 : 0) : -1;
    build.forward.kernel = std::make_unique<LayerNormTrainingForwardKernel>(
        v, epsilon_, gamma < 0 ? -1 : 1 + gamma, beta < 0 ? -1 : 1 + beta);
    LayerNormBackwardKernel::Args args;
    args.x = a.input(0);
    args.gamma = gamma < 0 ? -1 : a.weight(gamma);
    args.mean = a.saved_tensor(0);
    args.rstd = a.saved_tensor(1);
    args.dy = a.diff_output(0);
    if (ctx.needs_input_gradient[0]) args.dx = a.diff_input(0);
    if (!ctx.frozen) {
      if (gamma >= 0) args.dgamma = a.diff_weight(gamma);
      if (beta >= 0) args.dbeta = a.diff_weight(beta);
    }
    build.backward.kernel = std::make_unique<LayerNormBackwardKernel>(v, args);
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& shape = ctx.inputs[0].shape;
    const int rank = static_cast<int>(shape.size());
    if (axes_.size() == 1 && normalize_axis(static_cast<int>(axes_[0]), rank) != rank - 1) {
      const int axis = normalize_axis(static_cast<int>(axes_[0]), rank);
      Dim outer = 1, inner = 1;
      for (int i = 0; i < axis; ++i) outer = dim_mul(outer, shape[i]);
      for (int i = axis + 1; i < rank; ++i) inner = dim_mul(inner, shape[i]);
      const auto vec = onednn::plain_desc(Dims{shape[axis]});
      dnnl::memory gamma, beta;
      if (scale_) gamma = ctx.weight_memory("gamma", vec, vec);
      if (center_) beta = ctx.weight_memory("beta", vec, vec);
      build.kernel = std::make_unique<MiddleAxisLayerNormKernel>(outer, shape[axis], inner,
                                                                 epsilon_, gamma, beta);
      return build;
    }
    int first = rank;
    for (int64_t a : axes_) first = std::min(first, normalize_axis(static_cast<int>(a), rank));
    Dim rows = 1, cols = 1;
    for (int i = 0; i < first; ++i) rows = dim_mul(rows, shape[i]);
    for (int i = first; i < rank; ++i) cols = dim_mul(cols, shape[i]);
    dnnl::memory::desc view({rows, cols}, onednn::dt::f32, onednn::tag::ab);
    auto pd = onednn::make_layer_norm_pd(view, static_cast<float>(epsilon_), scale_, center_);
    // gamma / beta have the normalized dims' shape; their bytes are the flat {cols} vector.
    const auto vec = onednn::plain_desc(Dims{cols});
    std::vector<std::pair<int, CallArg>> args{{DNNL_ARG_SRC, CallArg::src(0, view)},
                                              {DNNL_ARG_DST, CallArg::dst(0, view)}};
    if (scale_)
      args.push_back({DNNL_ARG_SCALE, CallArg::constant(ctx.weight_memory("gamma", vec, vec))});
    if (center_)
      args.push_back({DNNL_ARG_SHIFT, CallArg::constant(ctx.weight_memory("beta", vec, vec))});
    PrimitiveSequence calls;
    calls.add(pd, std::move(args), build);
    build.kernel = std::make_unique<PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

 private:
  // The normalized elements as [outer, c, inner]: the trailing axes are c (inner = 1); a single
  // middle axis is c between the dims before and after it.
  LayerNormView view(const Dims& shape) const {
    const int rank = static_cast<int>(shape.size());
    int first = rank;
    for (int64_t ax : axes_) first = std::min(first, normalize_axis(static_cast<int>(ax), rank));
    const int last = axes_.size() == 1 ? first : rank - 1;
    LayerNormView v;
    v.c = 1;
    for (int i = 0; i < first; ++i) v.outer = dim_mul(v.outer, shape[i]);
    for (int i = first; i <= last; ++i) v.c = dim_mul(v.c, shape[i]);
    for (int i = last + 1; i < rank; ++i) v.inner = dim_mul(v.inner, shape[i]);
    return v;
  }

  // The first normalized axis when the axes are exactly first..rank-1; for a single other
  // axis a, returns -a.
  int first_axis(const InferContext& ctx) const {
    const int rank = ctx.input(0).rank();
    std::vector<int> axes;
    for (int64_t a : axes_) {
      const int n = normalize_axis(static_cast<int>(a), rank);
      if (n < 0)
        throw ctx.attr_error(
            "axis", fmt::format("axis {} is out of range for a rank-{} input {} "
                                "(valid: {} to {})",
                                a, rank, format_shape(ctx.input(0).shape), -rank, rank - 1));
      if (n == 0)
        throw ctx.attr_error("axis", "layer_normalization cannot normalize over the batch axis 0");
      if (std::find(axes.begin(), axes.end(), n) != axes.end())
        throw ctx.attr_error("axis", fmt::format("axis {} is listed twice", a));
      axes.push_back(n);
    }
    std::sort(axes.begin(), axes.end());
    if (axes.size() == 1 && axes[0] != rank - 1) return -axes[0];
    const int first = axes.front();
    if (axes.back() != rank - 1 || static_cast<int>(axes.size()) != rank - first) {
      Error e = ctx.attr_error(
          "axis", fmt::format("layer_normalization supports only trailing axes (an int, or a list "
                              "ending at the last axis with no gaps); got {} for a rank-{} input",
                              describe_axes(), rank));
      e.hint(fmt::format("use axis: -1, or a list like [{}, -1]", -2));
      throw e;
    }
    return first;
  }

  std::string describe_axes() const {
    if (axes_.size() == 1) return std::to_string(axes_[0]);
    std::string out = "[";
    for (size_t i = 0; i < axes_.size(); ++i) out += (i ? ", " : "") + std::to_string(axes_[i]);
    return out + "]";
  }

  std::vector<int64_t> axes_{-1};
  double epsilon_ = 0.001;
  bool center_ = true, scale_ = true;
};

}  // namespace

OpInfo layer_normalization_op() {
  return {"layer_normalization", [] { return std::make_unique<LayerNormalization>(); },
          "Keras LayerNormalization over the trailing axes"};
}

}  // namespace fg::layers
