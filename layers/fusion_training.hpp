// Building blocks of the fusion ops' training kernels (gated, tensor_fusion, low_rank_fusion,
// cross_attention, film): a kernel that interleaves oneDNN primitive calls with plain C++
// stages (OpenMP loops over the step's buffers), and a matmul call over strided views that may
// accumulate into its dst.
#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "kernels/kernel.hpp"

namespace fg::layers {

// Primitive calls (calls()) with C++ stages between them. A stage added by add_stage runs after
// every call added before it and before every call added after it; the stream is waited on
// before each stage. Stages must not allocate.
class StagedKernel final : public Kernel {
 public:
  using Stage = std::function<void(ExecContext&)>;

  PrimitiveSequence& calls() { return calls_; }
  void add_stage(Stage stage) { stages_.push_back({calls_.size(), std::move(stage)}); }

  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override;
  void execute(ExecContext& ctx) const override;
  std::string impl_info() const override { return calls_.impl(); }

 private:
  struct Placed {
    size_t after_calls;
    Stage run;
  };
  PrimitiveSequence calls_;
  std::vector<Placed> stages_;
};

// dst (+)= src x weights (+ bias), batched over leading dims as oneDNN matmul does. Each
// CallArg carries its operand's desc as its view (strided views for per-head or transposed
// operands: onednn::transposed_desc / strided_desc). `accumulate` adds to dst (a sum post-op).
// `bias` may be a CallArg without a view (no bias).
void add_matmul(PrimitiveSequence& calls, KernelBuild& build, const CallArg& src,
                const CallArg& weights, const CallArg& dst, bool accumulate = false,
                const CallArg& bias = {}, float scale = 1.f);

// The float data of a step's buffer.
inline float* data_of(const dnnl::memory& m) {
  return static_cast<float*>(m.get_data_handle());
}

}  // namespace fg::layers
