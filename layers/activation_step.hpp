// Applying a Keras activation to a tensor in place, for ops with an `activation` attribute.
// Most activations fuse into the producing primitive as a post-op (onednn::append_activation);
// the rest (softmax and log_softmax over the last axis, softsign) run as a separate step.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>

#include "kernels/kernel.hpp"

namespace fg::layers {

class ActivationStep {
 public:
  // For an activation that cannot be a post-op: the step that applies it in place to a tensor
  // with desc `desc` (plain, last axis = channels). Returns nullopt for "linear" and for
  // activations that append_activation() fuses. softmax / log_softmax run over the last
  // *logical* dim of `desc`: pass a desc in Keras dims order (e.g. ctx.dst_descs[i]), never a
  // channels_first_view() ({N, C, spatial}), whose last logical dim is a spatial one.
  // Registers its primitive's scratchpad with `ctx`.
  static std::optional<ActivationStep> make(const std::string& activation,
                                            const dnnl::memory::desc& desc, KernelContext& ctx);
  void execute(ExecContext& ctx, const dnnl::memory& data) const;
  std::string impl_info() const;

 private:
  std::string activation_;
  std::optional<dnnl::primitive> prim_;  // softmax / logsoftmax
  std::string impl_;
};

// True when append_activation() can fuse it (or it is linear).
bool activation_fuses(const std::string& activation);
// True when an op with an `activation` attribute can apply it: fused, or as an ActivationStep.
bool activation_supported(const std::string& activation);

}  // namespace fg::layers
