#include "layers/fusion_training.hpp"

#include "kernels/onednn/onednn.hpp"

namespace fg::layers {

std::unique_ptr<KernelBinding> StagedKernel::bind(const StepBuffers& buffers) const {
  return calls_.bind(buffers);
}

void StagedKernel::execute(ExecContext& ctx) const {
  const auto& binding = static_cast<const PrimitiveSequence::Binding&>(*ctx.binding);
  size_t done = 0;
  for (const Placed& stage : stages_) {
    if (stage.after_calls > done) {
      calls_.run(ctx, binding, done, stage.after_calls);
      done = stage.after_calls;
    }
    ctx.stream.wait();
    stage.run(ctx);
  }
  if (done < calls_.size()) calls_.run(ctx, binding, done);
}

void add_matmul(PrimitiveSequence& calls, KernelBuild& build, const CallArg& src,
                const CallArg& weights, const CallArg& dst, bool accumulate, const CallArg& bias,
                float scale) {
  dnnl::primitive_attr attr = onednn::make_attr();
  dnnl::post_ops ops;
  if (scale != 1.f) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, scale, 0.f);
  if (accumulate) ops.append_sum(1.f);
  attr.set_post_ops(ops);
  const bool has_bias = bias.view.data.ndims != 0;
  dnnl::matmul::desc d(src.view, weights.view, has_bias ? bias.view : dnnl::memory::desc(),
                       dst.view);
  dnnl::matmul::primitive_desc pd(d, attr, onednn::cpu_engine());
  std::vector<std::pair<int, CallArg>> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (has_bias) args.push_back({DNNL_ARG_BIAS, bias});
  calls.add(pd, std::move(args), build);
}

}  // namespace fg::layers
