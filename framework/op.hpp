// The interface every op implements, built-in or registered from outside the core.
// An op's life has three steps:
//   parse    reads its attributes by name (AttrReader), once per node;
//   infer    pure shape/dtype inference and validation, on possibly-dynamic shapes; throws
//            fg::Error;
//   compile  for concrete shapes, reads a KernelContext (types, stored input layouts, weights,
//            options) and returns a KernelBuild: the Kernel (oneDNN primitives, reordered
//            weights) and the layouts, temporaries and scratchpad it needs. See
//            kernels/kernel.hpp.
// Ops also declare their weights (Keras names and shapes) and their FLOPs.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/error.hpp"
#include "framework/graph_def.hpp"
#include "framework/shape.hpp"

namespace fg {

struct KernelBuild;
struct KernelContext;
struct TrainingBuild;
struct TrainingKernelContext;

// Reads a node's attributes by name with Keras defaults; records which keys were read so that
// the compiler can reject unknown keys with a "did you mean".
class AttrReader {
 public:
  explicit AttrReader(const NodeDef& node);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key);                    // required
  int64_t get_int(const std::string& key, int64_t fallback);  // optional
  double get_float(const std::string& key);
  double get_float(const std::string& key, double fallback);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_string(const std::string& key);
  std::string get_string(const std::string& key, const std::string& fallback);
  // One of `choices` (e.g. padding: valid/same), with a did-you-mean on a miss.
  std::string get_choice(const std::string& key, const std::vector<std::string>& choices,
                         const std::string& fallback);
  // Keras tuple arguments: an int n expands to [n]*count; a list must have `count` ints.
  std::vector<int64_t> get_ints(const std::string& key, size_t count);
  std::vector<int64_t> get_ints(const std::string& key, size_t count,
                                std::vector<int64_t> fallback);
  // A list of any length of ints (null items become kDynamic when allow_null).
  std::vector<int64_t> get_int_list(const std::string& key, bool allow_null = false);
  std::vector<double> get_float_list(const std::string& key);
  // Positive-value checks point at the value.
  int64_t get_positive_int(const std::string& key);
  int64_t get_positive_int(const std::string& key, int64_t fallback);
  std::vector<int64_t> get_positive_ints(const std::string& key, size_t count);
  std::vector<int64_t> get_positive_ints(const std::string& key, size_t count,
                                         std::vector<int64_t> fallback);
  // An activation name (Keras's list), validated with a did-you-mean.
  std::string get_activation(const std::string& key, const std::string& fallback);

  // Where a key's value is (or the node when absent), and an error pointing there.
  SourceLoc loc_of(const std::string& key) const;
  Error error(const std::string& key, const std::string& message) const;

  const std::vector<std::string>& used_keys() const { return used_; }

 private:
  const Attr* find(const std::string& key);
  const Attr& require(const std::string& key);

  const NodeDef& node_;
  mutable std::vector<std::string> used_;  // keys asked for (has() counts: the key is known)
};

// The Keras activation names we know, in the order docs list them.
const std::vector<std::string>& activation_names();

// What `infer` sees: the node, its input types, and helpers to build errors that point at the
// node (or one of its inputs / attributes) in the YAML.
class InferContext {
 public:
  InferContext(const NodeDef& node, std::vector<TensorType> inputs,
               std::vector<std::string> input_names);

  const std::vector<TensorType>& inputs() const { return inputs_; }
  const TensorType& input(size_t i) const { return inputs_.at(i); }
  size_t num_inputs() const { return inputs_.size(); }
  const std::string& input_name(size_t i) const { return input_names_.at(i); }
  const NodeDef& node() const { return node_; }

  Error error(const std::string& message) const;                  // at the node
  Error input_error(size_t i, const std::string& message) const;  // at input i's reference
  Error attr_error(const std::string& key, const std::string& message) const;  // at the attribute

  // Common checks; each throws a clear error.
  void expect_inputs(size_t count) const;
  void expect_inputs_at_least(size_t count) const;
  void expect_rank(size_t i, int rank) const;
  void expect_rank_at_least(size_t i, int rank) const;
  void expect_dtype(size_t i, DType dtype) const;
  // Every input with its name and shape, one per line, indented (for messages about all inputs).
  std::string describe_inputs() const;

 private:
  const NodeDef& node_;
  std::vector<TensorType> inputs_;
  std::vector<std::string> input_names_;
};

// How `graph-runner init` fills a weight (Keras defaults).
enum class Init {
  zeros,
  ones,
  glorot_uniform,     // limit sqrt(6 / (fan_in + fan_out))
  orthogonal,         // Keras recurrent_initializer; per [units, k*units] block
  uniform_embedding,  // Keras Embedding: uniform(-0.05, 0.05)
  lstm_bias,          // zeros, forget gate (second quarter) ones
};

struct WeightSpec {
  std::string param;  // "kernel", "bias", ... ; the file key is "<node>.<param>"
  Dims shape;         // Keras shape
  Init init = Init::zeros;
  int64_t fan_in = 0, fan_out = 0;  // for glorot
  bool trainable = true;
};

// What an optimizing plan may do around an op's nodes; all false by default. Ops that a pass
// folds away implement a pass-side interface instead (framework/op_fusion.hpp).
struct OpTraits {
  // The output is input 0's bytes seen with another shape (flatten, reshape, dropout at
  // inference): the plan then aliases the buffer instead of running the kernel.
  bool is_view = false;
  // compile() accepts inputs in any oneDNN layout: ctx.input_descs[i] is then either the plain
  // desc or a blocked desc in oneDNN's logical order {N, C, spatial...} (e.g. nChw16c) that a
  // producer chose. A tensor stays blocked only when every consumer accepts it, so chains of
  // convolution and pooling run without reorders between them.
  bool accepts_blocked_inputs = false;
  // A following per-channel affine map (ChannelAffineOp: batch normalization) may fold into
  // this op: output channel c depends linearly on weights "kernel"[..., c] and "bias"[c] (Keras
  // layouts, no activation after them) and compile() applies a bias whenever
  // ctx.channel_affine is set. The plan then folds the map into those weights.
  bool accepts_channel_affine = false;
  // A following activation node (FusableActivationOp) may fuse into this op: compile() applies
  // ctx.fused_activation (a Keras activation that is a oneDNN post-op) after everything else.
  bool accepts_fused_activation = false;
  // Every row of the output over its last axis is a probability distribution (softmax over the
  // last axis, or a softmax activation): clients print top classes.
  bool outputs_probabilities = false;
  // The activation the op applies last, when it is "softmax" or "sigmoid" (else ""): training
  // then computes it fused with a crossentropy loss from the logits
  // (TrainingKernelContext::output_logits).
  std::string final_activation;
};

class Op {
 public:
  virtual ~Op() = default;

  // Reads attributes. Unknown keys are rejected by the compiler after this returns.
  virtual void parse(AttrReader& attrs) = 0;
  // Output types for the given inputs (shapes may be dynamic). Pure; throws fg::Error.
  virtual std::vector<TensorType> infer(const InferContext& ctx) const = 0;
  // Weights for the given inputs (only per-sample dims are used). Default: none.
  virtual std::vector<WeightSpec> weights(const InferContext& ctx) const;
  // FLOPs for one sample (2 x multiply-accumulates of matmuls), given concrete per-sample dims.
  virtual double flops_per_sample(const InferContext& ctx,
                                  const std::vector<TensorType>& outputs) const;
  // Masks: if false, a masked input is an error (as in Keras). If true and the op's output is
  // masked but the op does not produce the mask itself, the first masked input's mask passes on.
  virtual bool supports_masking() const { return false; }
  virtual bool produces_mask() const { return false; }
  // Value ranges, for synthetic inputs and checks: the number of valid values [0, n) of an
  // int32 index input (an embedding's token ids: input_dim); 0 when the input is no index.
  virtual int64_t index_range(size_t input) const {
    (void)input;
    return 0;
  }
  // What an optimizing plan and the graph's clients may assume about this op's nodes (see
  // OpTraits). Default: nothing.
  virtual OpTraits traits() const { return {}; }
  // Builds the executable kernel for concrete shapes and says what memory it needs (start from
  // ctx.start_build()). The plan checks every returned descriptor against the inferred types.
  virtual KernelBuild compile(const KernelContext& ctx) const = 0;

  // Training (kernels/training_kernel.hpp). An op with a gradient says so and builds, for
  // concrete shapes, its training-mode forward kernel and its backward kernel into `build`.
  // The training plan calls compile_training only when has_gradient() is true; a graph whose
  // trainable weights lie before a node without a gradient is an error at that node. The
  // default throws.
  virtual bool has_gradient() const { return false; }
  virtual void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const;
};

}  // namespace fg
