// tensor_fusion (Zadeh et al. 2017, Tensor Fusion Network): M >= 2 inputs [B, d_m] give
// z = flatten([x_1; 1] (x) [x_2; 1] (x) ... (x) [x_M; 1]), shape [B, prod_m (d_m + 1)].
// The appended 1 is the LAST element of each vector, and the flatten is C order over the
// modalities in input order (the last input varies fastest):
//   z[b, ((i_1 * (d_2+1) + i_2) * (d_3+1) + i_3) ...] = v_1[b, i_1] * v_2[b, i_2] * ...
// No weights. Runs on oneDNN: a reorder copies each input into a [B, d_m + 1] temporary (the 1s
// are written in plain C++), then a chain of batched matmuls with K = 1 builds the outer
// product one modality at a time ({B, P, 1} x {B, 1, d_k + 1} -> {B, P, d_k + 1}).
#include <fmt/format.h>

#include <array>
#include <limits>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/fusion_training.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

// Writes the 1 that ends each augmented vector [x_m; 1] (temps 0..M-1), then runs the calls:
// each x_m copied into its augmented vector, then the outer products.
class TensorFusionKernel final : public PrimitiveSequenceKernel {
 public:
  TensorFusionKernel(PrimitiveSequence calls, std::string impl, std::vector<int64_t> dims,
                     int64_t batch)
      : PrimitiveSequenceKernel(std::move(calls), std::move(impl)),
        dims_(std::move(dims)),
        batch_(batch) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();  // the temps may still be in use by a previous primitive
    for (size_t m = 0; m < dims_.size(); ++m) {
      auto* aug = static_cast<float*>(ctx.temps[m].get_data_handle());
      const int64_t d = dims_[m];
      for (int64_t b = 0; b < batch_; ++b) aug[b * (d + 1) + d] = 1.f;
    }
    PrimitiveSequenceKernel::execute(ctx);
  }

 private:
  std::vector<int64_t> dims_;
  int64_t batch_;
};

// The backward: for each sample and each entry z[j] (multi-index i_1..i_M), prefix and suffix
// products of the v_k give every dx_m[i_m] += dz[j] prod_{k != m} v_k[i_k] in O(M) per entry.
class TensorFusionBackward final : public Kernel {
 public:
  static constexpr size_t kMaxInputs = 64;  // 2^64 features is far above max_features

  TensorFusionBackward(std::vector<int64_t> dims, int64_t batch, std::vector<bool> needed)
      : dims_(std::move(dims)), batch_(batch), needed_(std::move(needed)) {}

  void execute(ExecContext& ctx) const override {
    const size_t n = dims_.size();
    int64_t total = 1;
    for (int64_t d : dims_) total *= d + 1;
    const float* dz = static_cast<const float*>(ctx.srcs[n + 1].get_data_handle());
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
    for (int64_t b = 0; b < batch_; ++b) {
      std::array<const float*, kMaxInputs> x{};
      std::array<float*, kMaxInputs> dx{};
      std::array<int64_t, kMaxInputs> idx{};
      std::array<float, kMaxInputs + 1> prefix{}, suffix{};
      for (size_t m = 0; m < n; ++m) {
        x[m] = static_cast<const float*>(ctx.srcs[m].get_data_handle()) + b * dims_[m];
        if (!needed_[m]) continue;
        dx[m] = static_cast<float*>(ctx.dsts[m].get_data_handle()) + b * dims_[m];
        for (int64_t i = 0; i < dims_[m]; ++i) dx[m][i] = 0.f;
      }
      auto v = [&](size_t m) { return idx[m] == dims_[m] ? 1.f : x[m][idx[m]]; };
      const float* g = dz + b * total;
      for (int64_t j = 0; j < total; ++j) {
        prefix[0] = 1.f;
        for (size_t m = 0; m < n; ++m) prefix[m + 1] = prefix[m] * v(m);
        suffix[n] = 1.f;
        for (size_t m = n; m-- > 0;) suffix[m] = suffix[m + 1] * v(m);
        for (size_t m = 0; m < n; ++m)
          if (dx[m] && idx[m] < dims_[m]) dx[m][idx[m]] += g[j] * prefix[m] * suffix[m + 1];
        for (size_t m = n; m-- > 0;) {  // the next multi-index, the last input fastest
          if (++idx[m] <= dims_[m]) break;
          idx[m] = 0;
        }
      }
    }
  }

 private:
  std::vector<int64_t> dims_;
  int64_t batch_;
  std::vector<bool> needed_;
};

class TensorFusion final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    max_features_ = attrs.get_positive_int("max_features", 1000000);
  }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    const size_t n = ctx.num_inputs();
    if (n < 2)
      throw ctx
          .error(fmt::format("tensor_fusion takes at least 2 inputs (one per modality), got {}", n))
          .hint("list the modality features as `inputs: [a, b, ...]`");
    Dim batch = kDynamic;
    std::string sizes;
    int64_t product = 1;
    double approx = 1;
    bool overflow = false;
    for (size_t i = 0; i < n; ++i) {
      const TensorType& x = ctx.input(i);
      if (x.dtype != DType::f32)
        throw ctx
            .input_error(i, fmt::format("tensor_fusion needs float32 inputs, but '{}' is {}",
                                        ctx.input_name(i), format_type(x)))
            .hint("int32 inputs are usually token ids: encode them first (embedding + lstm)");
      if (x.rank() != 2)
        throw ctx
            .input_error(i, fmt::format("tensor_fusion needs rank-2 inputs [batch, features], but "
                                        "'{}' has shape {}",
                                        ctx.input_name(i), format_shape(x.shape)))
            .hint(x.rank() == 3 ? "pool the sequence first (global_average_pooling1d) or take the "
                                  "last lstm state"
                                : "flatten the input first");
      const Dim d = x.shape[1];
      if (d == kDynamic)
        throw ctx.input_error(
            i, fmt::format("tensor_fusion needs the feature size of '{}' known, got {}",
                           ctx.input_name(i), format_shape(x.shape)));
      if (x.shape[0] != kDynamic) {
        if (batch != kDynamic && x.shape[0] != batch)
          throw ctx.input_error(i, fmt::format("inputs of tensor_fusion must have equal batch "
                                               "sizes, but '{}' has {} where another has {}",
                                               ctx.input_name(i), x.shape[0], batch));
        batch = x.shape[0];
      }
      sizes += fmt::format("{}({} + 1)", i ? " x " : "", d);
      approx *= static_cast<double>(d) + 1.0;
      int64_t next = 0;
      if (!overflow && __builtin_mul_overflow(product, d + 1, &next)) overflow = true;
      if (!overflow) product = next;
    }
    if (overflow || product > max_features_) {
      const std::string size =
          overflow ? fmt::format("about {:.3g}", approx) : fmt::format("{}", product);
      throw ctx
          .error(fmt::format("tensor_fusion would produce {} features per sample ({}), more than "
                             "max_features = {}",
                             size, sizes, max_features_))
          .hint(
              "project the inputs to smaller sizes with a dense node first (e.g. 16 to 32 "
              "units each), or use low_rank_fusion, whose size does not grow with the "
              "product; raise max_features only if that size is really intended");
    }
    return {TensorType{{batch, product}, DType::f32, false}};
  }

  bool has_gradient() const override { return true; }

  // Training: the forward is the inference kernel (reorders and outer-product matmuls, over
  // plain buffers, nothing saved); the backward is plain C++ (TensorFusionBackward):
  //   dx_m[b, i] = sum over the entries j with i_m = i of dz[b, j] prod_{k != m} v_k[b, i_k]
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    if (ctx.inputs.size() > TensorFusionBackward::kMaxInputs)
      throw ctx.error(fmt::format("tensor_fusion trains with at most {} inputs, got {}",
                                  TensorFusionBackward::kMaxInputs, ctx.inputs.size()));
    build = start_training_build(ctx, {});
    build.forward = compile(ctx);
    std::vector<int64_t> dims;
    for (const auto& in : ctx.inputs) dims.push_back(in.shape[1]);
    build.backward.kernel = std::make_unique<TensorFusionBackward>(
        std::move(dims), ctx.inputs[0].shape[0], ctx.needs_input_gradient);
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const size_t n = ctx.inputs.size();
    const int64_t batch = ctx.inputs[0].shape[0];
    std::vector<int64_t> dims;
    for (size_t m = 0; m < n; ++m) {
      if (ctx.input_descs[m] != onednn::plain_desc(ctx.inputs[m]))
        throw ctx.error("internal: tensor_fusion expects its inputs in the plain layout");
      dims.push_back(ctx.inputs[m].shape[1]);
    }
    PrimitiveSequence calls;
    std::string impl;
    for (size_t m = 0; m < n; ++m) {  // x_m into the first d_m columns of temp m [B, d_m + 1]
      const int64_t d = dims[m];
      const int aug = build.add_temp(onednn::plain_desc(Dims{batch, d + 1}));
      const memory::desc aug_view = onednn::strided_desc({batch, d}, {d + 1, 1});
      auto pd = onednn::make_reorder_pd(build.src_descs[m], aug_view);
      if (m == 0) impl = onednn::impl_name(pd);
      calls.add(pd, {{DNNL_ARG_FROM, CallArg::src(m)}, {DNNL_ARG_TO, CallArg::temp(aug, aug_view)}},
                build);
    }
    // Accumulators for the intermediate products (M >= 3): two temps used in turn.
    int64_t largest = 0, p = dims[0] + 1;
    for (size_t k = 1; k + 1 < n; ++k) {
      p *= dims[k] + 1;
      largest = std::max(largest, p);
    }
    const int acc_a = static_cast<int>(n), acc_b = static_cast<int>(n) + 1;
    if (n >= 3) {
      build.add_temp(onednn::plain_desc(Dims{batch, largest}));
      if (n >= 4) build.add_temp(onednn::plain_desc(Dims{batch, largest}));
    }
    // Outer product k: dst {B, P, Q} = acc {B, P, 1} x aug_k {B, 1, Q}, where acc is modality 0's
    // augmented vector, then the previous product; dst is an accumulator, the last the output.
    p = dims[0] + 1;
    int acc = 0;
    for (size_t k = 1; k < n; ++k) {
      const int64_t q = dims[k] + 1;
      const memory::desc acc_desc = onednn::plain_desc(Dims{batch, p, 1});
      const memory::desc aug_desc = onednn::plain_desc(Dims{batch, 1, q});
      const memory::desc dst_desc = onednn::plain_desc(Dims{batch, p, q});
      const int dst_temp = k + 1 == n ? -1 : (acc == acc_a ? acc_b : acc_a);
      auto pd = onednn::make_matmul_pd(acc_desc, aug_desc, memory::desc(), dst_desc);
      if (k == 1) impl += " + " + onednn::impl_name(pd);
      calls.add(pd,
                {{DNNL_ARG_SRC, CallArg::temp(acc, acc_desc)},
                 {DNNL_ARG_WEIGHTS, CallArg::temp(static_cast<int>(k), aug_desc)},
                 {DNNL_ARG_DST,
                  dst_temp < 0 ? CallArg::dst(0, dst_desc) : CallArg::temp(dst_temp, dst_desc)}},
                build);
      acc = dst_temp;
      p *= q;
    }
    build.kernel = std::make_unique<TensorFusionKernel>(std::move(calls), std::move(impl),
                                                        std::move(dims), batch);
    return build;
  }

 private:
  int64_t max_features_ = 1000000;
};

}  // namespace

OpInfo tensor_fusion_op() {
  return {"tensor_fusion", [] { return std::make_unique<TensorFusion>(); },
          "Tensor Fusion (Zadeh et al. 2017): flattened outer product of [x_m; 1] (oneDNN matmul)"};
}

}  // namespace fg::layers
