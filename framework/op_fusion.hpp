// Pass-side interfaces: what an op offers the plan's fusion passes when the pass folds the op's
// node into its producer. An op implements one besides Op (the pass finds it with
// dynamic_cast); every other op is untouched.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "framework/shape.hpp"

namespace fg {

// A weight as loaded: f32 values in its Keras shape.
struct WeightView {
  const float* data = nullptr;
  Dims shape;
};
// A node's weight by parameter name (e.g. "moving_mean"); throws fg::Error when missing.
using WeightViewLookup = std::function<WeightView(const std::string& param)>;

// An op that is y = x * scale[c] + shift[c] over the last axis for some inputs (batch
// normalization at inference), which the plan folds into a producer whose traits
// accepts_channel_affine.
class ChannelAffineOp {
 public:
  virtual ~ChannelAffineOp() = default;
  // For a node with this input: fills scale and shift (one per channel) from its weights and
  // returns true, or returns false when the op is not such a map for it.
  virtual bool channel_affine(const TensorType& input, const WeightViewLookup& weight,
                              std::vector<float>& scale, std::vector<float>& shift) const = 0;
};

// An elementwise activation op that a producer whose traits accepts_fused_activation can apply
// as its last post-op.
class FusableActivationOp {
 public:
  virtual ~FusableActivationOp() = default;
  // The Keras activation to apply in its place (relu, gelu, ...), or "" when it cannot be fused.
  virtual std::string fused_activation() const = 0;
};

}  // namespace fg
