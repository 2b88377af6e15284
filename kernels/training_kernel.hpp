// What an op builds for training (Op::compile_training): two ordinary kernels, run as plan steps
// by the training plan (engine/training/training_plan.hpp), over plain buffers only (Keras
// order, row major: onednn::plain_desc). Their argument lists follow one convention:
//
//   forward   srcs: the node's inputs, then its weights (in weights() order, Keras layouts)
//             dsts: its outputs, then the tensors it keeps for the backward (saved_descs:
//                   workspaces, dropout masks, batch statistics, pre-activations, ...)
//   backward  srcs: inputs, weights, outputs, saved, then d loss / d output for each output
//             dsts: d loss / d input for each input (float32, the input's shape; written only
//                   where needs_input_gradient[i], else left untouched), then d loss / d weight
//                   for each weight (Keras layout; overwritten each step, never accumulated;
//                   left untouched when the node is frozen)
//
// Kernels may use any layout inside (temporaries, reorders); the plan checks that every src
// and dst desc they hand back is the plain one. Masks come as in inference (ExecContext
// src_masks / dst_masks) to both kernels. Weights are the live parameters: the forward of a
// batch normalization in training mode writes its moving statistics into its weight srcs in
// place (the only weights a kernel may write).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.hpp"

namespace fg {

struct TrainingKernelContext : KernelContext {
  std::vector<TensorType> weight_types;    // Keras shapes, in weights() order
  std::vector<bool> needs_input_gradient;  // per input
  // trainable: false. No weight gradients are needed; batch normalization then runs in
  // inference mode (Keras 3). Gradients still flow to the inputs.
  bool frozen = false;
  // The op's final softmax / sigmoid (OpTraits::final_activation) is taken by the loss, which
  // computes it fused with the crossentropy from the logits: the forward writes output 0
  // *before* that activation and the backward receives d loss / d pre-activation.
  bool output_logits = false;
  // Per node, for random draws (dropout), combined with ExecContext::step.
  uint64_t seed = 0;
};

struct TrainingBuild {
  KernelBuild forward;
  KernelBuild backward;
  std::vector<dnnl::memory::desc> saved_descs;  // see above; forward dsts after the outputs
};

// Index helpers for the backward kernel's srcs / dsts under the convention above.
struct BackwardArgs {
  int inputs = 0, weights = 0, outputs = 0, saved = 0;

  int input(int i) const { return i; }
  int weight(int i) const { return inputs + i; }
  int output(int i) const { return inputs + weights + i; }
  int saved_tensor(int i) const { return inputs + weights + outputs + i; }
  int diff_output(int i) const { return inputs + weights + outputs + saved + i; }
  int srcs() const { return inputs + weights + 2 * outputs + saved; }
  // dsts
  int diff_input(int i) const { return i; }
  int diff_weight(int i) const { return inputs + i; }
  int dsts() const { return inputs + weights; }
};

// The convention's indices for a context (ctx.inputs / weight_types / outputs) and `saved`
// tensors.
BackwardArgs backward_args(const TrainingKernelContext& ctx, size_t saved);

// Starts a TrainingBuild: forward reads its inputs and weights plain and writes its outputs
// and `saved` plain; backward has the convention's plain srcs and dsts.
TrainingBuild start_training_build(const TrainingKernelContext& ctx,
                                   const std::vector<dnnl::memory::desc>& saved);

}  // namespace fg
