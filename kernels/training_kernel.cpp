#include "kernels/training_kernel.hpp"

#include "kernels/onednn/onednn.hpp"

namespace fg {

BackwardArgs backward_args(const TrainingKernelContext& ctx, size_t saved) {
  BackwardArgs a;
  a.inputs = static_cast<int>(ctx.inputs.size());
  a.weights = static_cast<int>(ctx.weight_types.size());
  a.outputs = static_cast<int>(ctx.outputs.size());
  a.saved = static_cast<int>(saved);
  return a;
}

TrainingBuild start_training_build(const TrainingKernelContext& ctx,
                                   const std::vector<dnnl::memory::desc>& saved) {
  TrainingBuild build;
  build.saved_descs = saved;
  std::vector<dnnl::memory::desc> inputs, weights, outputs, diff_inputs;
  for (const TensorType& t : ctx.inputs) {
    inputs.push_back(onednn::plain_desc(t));
    diff_inputs.push_back(onednn::plain_desc(t.shape, DType::f32));
  }
  for (const TensorType& t : ctx.weight_types) weights.push_back(onednn::plain_desc(t));
  for (const TensorType& t : ctx.outputs) outputs.push_back(onednn::plain_desc(t));

  KernelBuild& f = build.forward;
  f.src_descs = inputs;
  f.src_descs.insert(f.src_descs.end(), weights.begin(), weights.end());
  f.dst_descs = outputs;
  f.dst_descs.insert(f.dst_descs.end(), saved.begin(), saved.end());

  KernelBuild& b = build.backward;
  b.src_descs = inputs;
  using Descs = std::vector<dnnl::memory::desc>;
  for (const Descs* part :
       std::initializer_list<const Descs*>{&weights, &outputs, &saved, &outputs})
    b.src_descs.insert(b.src_descs.end(), part->begin(), part->end());
  b.dst_descs = diff_inputs;
  b.dst_descs.insert(b.dst_descs.end(), weights.begin(), weights.end());
  return build;
}

}  // namespace fg
