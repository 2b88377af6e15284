// tensor_fusion (Zadeh et al. 2017, Tensor Fusion Network): M >= 2 inputs [B, d_m] give
// z = flatten([x_1; 1] (x) [x_2; 1] (x) ... (x) [x_M; 1]), shape [B, prod_m (d_m + 1)].
// The appended 1 is the LAST element of each vector, and the flatten is C order over the
// modalities in input order (the last input varies fastest):
//   z[b, ((i_1 * (d_2+1) + i_2) * (d_3+1) + i_3) ...] = v_1[b, i_1] * v_2[b, i_2] * ...
// No weights. Runs on oneDNN: a reorder copies each input into a [B, d_m + 1] temporary (the 1s
// are written in plain C++), then a chain of batched matmuls with K = 1 builds the outer
// product one modality at a time ({B, P, 1} x {B, 1, d_k + 1} -> {B, P, d_k + 1}).
#include <fmt/format.h>

#include <limits>

#include "layers/builtin_ops.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {
namespace {

using dnnl::memory;

// One outer-product step: dst = acc (x) aug[k].
struct OuterStep {
  dnnl::matmul prim;
  memory::desc acc, aug, dst;  // {B, P, 1}, {B, 1, Q}, {B, P, Q}
  int acc_temp;                // temp holding acc (-1: the temp of modality 0's augmented vector)
  int dst_temp;                // temp receiving dst (-1: the output)
};

class TensorFusionKernel final : public Kernel {
 public:
  TensorFusionKernel(std::vector<dnnl::reorder> copies, std::vector<memory::desc> aug_views,
                     std::vector<OuterStep> steps, std::vector<int64_t> dims, int64_t batch,
                     std::string impl)
      : copies_(std::move(copies)),
        aug_views_(std::move(aug_views)),
        steps_(std::move(steps)),
        dims_(std::move(dims)),
        batch_(batch),
        impl_(std::move(impl)) {}

  void execute(ExecContext& ctx) const override {
    const dnnl::engine engine = ctx.stream.get_engine();
    const size_t m_count = dims_.size();
    ctx.stream.wait();  // the temps may still be in use by a previous primitive
    for (size_t m = 0; m < m_count; ++m) {
      auto* aug = static_cast<float*>(ctx.temps[m].get_data_handle());
      const int64_t d = dims_[m];
      for (int64_t b = 0; b < batch_; ++b) aug[b * (d + 1) + d] = 1.f;
    }
    for (size_t m = 0; m < m_count; ++m) {
      memory view(aug_views_[m], engine, ctx.temps[m].get_data_handle());
      execute_primitive(copies_[m], ctx, {{DNNL_ARG_FROM, ctx.srcs[m]}, {DNNL_ARG_TO, view}});
    }
    for (size_t k = 0; k < steps_.size(); ++k) {
      const OuterStep& s = steps_[k];
      void* acc = ctx.temps[s.acc_temp < 0 ? 0 : s.acc_temp].get_data_handle();
      void* dst =
          s.dst_temp < 0 ? ctx.dsts[0].get_data_handle() : ctx.temps[s.dst_temp].get_data_handle();
      execute_primitive(
          s.prim, ctx,
          {{DNNL_ARG_SRC, memory(s.acc, engine, acc)},
           {DNNL_ARG_WEIGHTS, memory(s.aug, engine, ctx.temps[k + 1].get_data_handle())},
           {DNNL_ARG_DST, memory(s.dst, engine, dst)}});
    }
  }

  std::string impl_info() const override { return impl_; }

 private:
  std::vector<dnnl::reorder> copies_;
  std::vector<memory::desc> aug_views_;
  std::vector<OuterStep> steps_;
  std::vector<int64_t> dims_;
  int64_t batch_;
  std::string impl_;
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

  std::unique_ptr<Kernel> compile(KernelContext& ctx) const override {
    const size_t n = ctx.inputs.size();
    const int64_t batch = ctx.inputs[0].shape[0];
    std::vector<int64_t> dims;
    for (size_t m = 0; m < n; ++m) {
      if (ctx.src_descs[m] != onednn::plain_desc(ctx.inputs[m]))
        throw ctx.error("internal: tensor_fusion expects its inputs in the plain layout");
      dims.push_back(ctx.inputs[m].shape[1]);
    }
    std::vector<dnnl::reorder> copies;
    std::vector<memory::desc> aug_views;
    std::string impl;
    for (size_t m = 0; m < n; ++m) {
      const int64_t d = dims[m];
      ctx.temp_descs.push_back(onednn::plain_desc(Dims{batch, d + 1}));
      aug_views.push_back(onednn::strided_desc({batch, d}, {d + 1, 1}));
      auto pd = onednn::make_reorder_pd(ctx.src_descs[m], aug_views.back());
      ctx.add_scratchpad(pd);
      if (m == 0) impl = onednn::impl_name(pd);
      copies.emplace_back(pd);
    }
    // Accumulators for the intermediate products (M >= 3): two temps used in turn.
    int64_t largest = 0, p = dims[0] + 1;
    for (size_t k = 1; k + 1 < n; ++k) {
      p *= dims[k] + 1;
      largest = std::max(largest, p);
    }
    const int acc_a = static_cast<int>(n), acc_b = static_cast<int>(n) + 1;
    if (n >= 3) {
      ctx.temp_descs.push_back(onednn::plain_desc(Dims{batch, largest}));
      if (n >= 4) ctx.temp_descs.push_back(onednn::plain_desc(Dims{batch, largest}));
    }
    std::vector<OuterStep> steps;
    p = dims[0] + 1;
    int acc = -1;
    for (size_t k = 1; k < n; ++k) {
      const int64_t q = dims[k] + 1;
      OuterStep s;
      s.acc = onednn::plain_desc(Dims{batch, p, 1});
      s.aug = onednn::plain_desc(Dims{batch, 1, q});
      s.dst = onednn::plain_desc(Dims{batch, p, q});
      s.acc_temp = acc;
      s.dst_temp = k + 1 == n ? -1 : (acc == acc_a ? acc_b : acc_a);
      auto pd = onednn::make_matmul_pd(s.acc, s.aug, memory::desc(), s.dst);
      ctx.add_scratchpad(pd);
      if (k == 1) impl += " + " + onednn::impl_name(pd);
      s.prim = dnnl::matmul(pd);
      acc = s.dst_temp;
      p *= q;
      steps.push_back(std::move(s));
    }
    return std::make_unique<TensorFusionKernel>(std::move(copies), std::move(aug_views),
                                                std::move(steps), std::move(dims), batch,
                                                std::move(impl));
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
