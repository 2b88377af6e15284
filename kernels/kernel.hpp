// The executable side of an op: Op::compile builds a Kernel for concrete shapes; the executor
// calls Kernel::execute once per run. compile does all the expensive work (primitive
// descriptors, post-ops, weight reorders, once); execute only runs primitives.
//
// Memory: every tensor lives in a dnnl::memory whose desc the plan fixed. By default each
// output is in the plain layout (Keras order, row major: onednn::plain_desc); a kernel may set
// ctx.dst_descs[i] to another layout (the planner then reorders for consumers that need plain).
// Such a non-plain desc of a rank >= 3 tensor uses oneDNN's channels-first logical dims
// {N, C, spatial...} (e.g. nChw16c), like onednn::channels_first_view().
// Temporary buffers a kernel needs during execute are declared as ctx.temp_descs and come
// from the activation arena (so concurrent runs never share them).
//
// Scratchpads: every oneDNN primitive is created with a user-managed scratchpad
// (onednn::make_attr()); compile registers each primitive descriptor with
// ctx.add_scratchpad(pd), and execute runs primitives through execute_primitive(), which passes
// the call's scratchpad. Each step has its own scratchpad (the largest of its primitives), an
// arena buffer live during that step only,
// so concurrent runs of one plan never share primitive scratch memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/error.hpp"
#include "framework/graph_def.hpp"
#include "framework/shape.hpp"
#include "kernels/tensor.hpp"

namespace fg {

class WeightCache;

// A per-channel affine map y * scale[c] + shift[c] (batch normalization at inference) that the
// plan folds into the op producing its input (Op::accepts_channel_affine).
struct ChannelAffine {
  std::vector<float> scale, shift;
  std::string from_node;  // the folded normalization
};

struct KernelContext {
  const dnnl::engine& engine;
  const NodeDef& node;
  std::string file;
  std::vector<TensorType> inputs;   // concrete
  std::vector<TensorType> outputs;  // concrete
  // How each input is stored: plain, or a producer's blocked layout (for ops that
  // accepts_blocked_inputs()). A kernel may replace one with the layout it wants (same logical
  // dims as its primitive, e.g. {N, C, H, W}): the plan then reorders the input in a step before.
  std::vector<dnnl::memory::desc> src_descs;
  std::vector<dnnl::memory::desc> dst_descs;   // prefilled plain; a kernel may change them
  std::vector<dnnl::memory::desc> temp_descs;  // temporaries the kernel asks for
  int threads = 1;
  WeightCache* weight_cache = nullptr;
  const std::function<const Tensor&(const std::string& param)>* weight_lookup = nullptr;
  // Called after a weight has been reordered into the cache (drops its mapped pages).
  const std::function<void(const std::string& param)>* weight_done = nullptr;
  size_t scratchpad_bytes = 0;  // the largest scratchpad of the kernel's primitives
  // False in the unfused plan (ModelOptions::optimize): kernels then use their most direct
  // algorithm (e.g. no Winograd convolution), so tests can compare against it.
  bool optimize = true;
  // Set when the plan folded a following batch normalization into this op: ctx.weight("kernel")
  // and ctx.weight("bias") then return the folded tensors (kernel scaled along its last, output
  // axis; bias = bias * scale + shift), and the op must apply a bias even without use_bias.
  const ChannelAffine* channel_affine = nullptr;
  // Set when the plan fused a following activation node into this op
  // (Op::accepts_fused_activation): apply it last, as a post-op.
  std::string fused_activation;

  // A weight as loaded (f32, Keras shape), e.g. weight("kernel").
  const Tensor& weight(const std::string& param) const;
  // A weight reordered once from `user_desc` (describing the Keras bytes) to `want_desc`;
  // cached across plans of the same model, keyed by node, param and desc.
  dnnl::memory weight_memory(const std::string& param, const dnnl::memory::desc& user_desc,
                             const dnnl::memory::desc& want_desc);
  // A derived constant (e.g. a re-ordered bias), built once by `make` and cached like above.
  dnnl::memory constant(const std::string& key, const dnnl::memory::desc& want_desc,
                        const std::function<dnnl::memory()>& make);
  Error error(const std::string& message) const;
  // Records that a primitive built from `pd` (with onednn::make_attr()) runs in this kernel.
  void add_scratchpad(const dnnl::primitive_desc_base& pd);
};

struct ExecContext {
  dnnl::stream& stream;
  const std::vector<dnnl::memory>& srcs;
  const std::vector<dnnl::memory>& dsts;
  const std::vector<dnnl::memory>& temps;
  // Masks ([batch, steps] uint8, 1 = keep), nullptr where there is none.
  const std::vector<const uint8_t*>& src_masks;
  const std::vector<uint8_t*>& dst_masks;  // only for ops that produce_mask()
  const dnnl::memory& scratchpad;          // this run's scratchpad (see add_scratchpad)
  // The plan's thread count (1 or more): C++ loops use it (`omp parallel for
  // num_threads(ctx.threads)`); oneDNN primitives get the same count from the plan, which sets
  // the calling thread's OpenMP thread count for the run and restores it afterwards.
  int threads = 1;
};

// Executes a primitive with `args` plus this run's scratchpad.
void execute_primitive(const dnnl::primitive& prim, ExecContext& ctx,
                       std::unordered_map<int, dnnl::memory> args);

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Must be safe to call from several threads at once with different contexts.
  virtual void execute(ExecContext& ctx) const = 0;
  // oneDNN implementation name(s) for --per-node ("jit:avx2"), or "" for plain C++.
  virtual std::string impl_info() const { return ""; }
};

// A kernel that runs one oneDNN primitive with SRC/DST (and fixed extra args): enough for
// eltwise, softmax, pooling, normalization, reorder-like ops. With `src_views` / `dst_views`,
// input / output i reaches the primitive through that desc over the same bytes (e.g. plain NHWC
// seen channels-first, or a {rows, size} view) instead of the plan's desc.
class PrimitiveKernel : public Kernel {
 public:
  PrimitiveKernel(dnnl::primitive prim, std::string impl,
                  std::vector<std::pair<int, dnnl::memory>> fixed_args,
                  std::vector<int> src_args = {DNNL_ARG_SRC},
                  std::vector<int> dst_args = {DNNL_ARG_DST},
                  std::vector<dnnl::memory::desc> src_views = {},
                  std::vector<dnnl::memory::desc> dst_views = {});
  void execute(ExecContext& ctx) const override;
  std::string impl_info() const override { return impl_; }

 private:
  dnnl::primitive prim_;
  std::string impl_;
  std::vector<std::pair<int, dnnl::memory>> fixed_args_;
  std::vector<int> src_args_, dst_args_;
  std::vector<dnnl::memory::desc> src_views_, dst_views_;
};

}  // namespace fg
