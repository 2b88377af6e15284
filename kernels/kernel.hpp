// The executable side of an op. Op::compile reads a KernelContext (the node with concrete types,
// how its inputs are stored, its weights, the plan's options) and returns a KernelBuild: the
// Kernel and what it decided about memory (the layout it reads each input in and writes each
// output in, its temporaries, its scratchpad size). The plan checks every returned descriptor
// against the inferred types, places all buffers in one arena, and per execution state (one per
// concurrent run) calls Kernel::bind once; Kernel::execute then runs once per run. compile does
// the expensive work (primitive descriptors, post-ops, weight reorders, once); bind builds the
// argument lists over that state's buffers; execute allocates nothing and only runs primitives.
//
// Memory: every tensor lives in a dnnl::memory whose desc the plan fixed. By default each input
// is read as stored and each output is written plain (Keras order, row major:
// onednn::plain_desc); a kernel may ask for other layouts in KernelBuild::src_descs / dst_descs
// (the plan reorders before / after it where needed). Such a non-plain desc of a rank >= 3
// tensor uses oneDNN's channels-first logical dims {N, C, spatial...} (e.g. nChw16c), like
// onednn::channels_first_view(). Temporaries come from the activation arena (so concurrent runs
// never share them).
//
// Scratchpads: every oneDNN primitive is created with a user-managed scratchpad
// (onednn::make_attr()); compile registers each primitive descriptor with
// KernelBuild::add_scratchpad(pd), and every primitive runs as a PrimitiveCall, which passes the
// step's scratchpad (an arena buffer live during that step only).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <utility>
#include <vector>

#include "framework/error.hpp"
#include "framework/graph_def.hpp"
#include "framework/shape.hpp"
#include "kernels/precision.hpp"
#include "kernels/tensor.hpp"

namespace fg {

class WeightCache;
class Kernel;
struct Int8Node;

// A per-channel affine map y * scale[c] + shift[c] (batch normalization at inference) that the
// plan folds into the op producing its input (Op::accepts_channel_affine).
struct ChannelAffine {
  std::vector<float> scale, shift;
  std::string from_node;  // the folded normalization
};

// What Op::compile decided, handed back to the plan.
struct KernelBuild {
  std::unique_ptr<Kernel> kernel;
  // The layout the kernel reads input i in: the stored one (KernelContext::input_descs), or
  // another (same logical tensor), for which the plan reorders the input in a step before.
  std::vector<dnnl::memory::desc> src_descs;
  // The layout the kernel writes output i in: plain, or another that the plan keeps for
  // consumers that accept it (Op::accepts_blocked_inputs) and reorders to plain for the others.
  std::vector<dnnl::memory::desc> dst_descs;
  std::vector<dnnl::memory::desc> temp_descs;  // temporaries, ExecContext::temps in this order
  size_t scratchpad_bytes = 0;                 // the largest scratchpad of the kernel's primitives
  // The precision the kernel computes in, for ops that honour KernelContext::precision (dense,
  // conv): what they got, bf16, int8 or f32, and when they asked for another and got f32, why
  // (`precision_fallback`, e.g. "no native bf16 on avx2"). Shown by --per-node, with
  // `precision_detail` after it (int8: "u8 input", "dynamic u8 input").
  Precision precision = Precision::f32;
  std::string precision_fallback;
  std::string precision_detail;

  // Records that a primitive built from `pd` (with onednn::make_attr()) runs in this kernel.
  void add_scratchpad(const dnnl::primitive_desc_base& pd);
  // Asks for a temporary; returns its index in temp_descs / ExecContext::temps.
  int add_temp(const dnnl::memory::desc& desc);
};

// The read-only description of a node that compile builds a kernel for.
struct KernelContext {
  const dnnl::engine& engine;
  const NodeDef& node;
  std::vector<TensorType> inputs;   // concrete
  std::vector<TensorType> outputs;  // concrete
  // How each input is stored: plain, or a producer's blocked layout (for ops whose traits say
  // accepts_blocked_inputs).
  std::vector<dnnl::memory::desc> input_descs;
  int threads = 1;
  WeightCache* weight_cache = nullptr;
  const std::function<const Tensor&(const std::string& param)>* weight_lookup = nullptr;
  // False in the unfused plan (ModelOptions::optimize): kernels then use their most direct
  // algorithm (e.g. no Winograd convolution), so tests can compare against it.
  bool optimize = true;
  // The precision the plan asks for (ModelOptions::precision). Ops with bf16 kernels honour
  // bf16 where oneDNN has a native kernel for the CPU (onednn::native_bf16_isa()) and report
  // what they got in KernelBuild::precision; the others run in f32.
  Precision precision = Precision::f32;
  // With precision int8: the node's int8 weights and input quantization when the weights file
  // holds them (`graph-runner quantize`), else nullptr (dense then quantizes its kernel itself
  // and its input per run; conv runs in f32). weight("kernel") still returns an f32 kernel (the
  // dequantized one) for kernels that fall back to float.
  const Int8Node* int8 = nullptr;
  // Set when the plan folded a following batch normalization into this op: weight("kernel")
  // and weight("bias") then return the folded tensors (kernel scaled along its last, output
  // axis; bias = bias * scale + shift), and the op must apply a bias even without use_bias.
  const ChannelAffine* channel_affine = nullptr;
  // Set when the plan fused a following activation node into this op
  // (Op::accepts_fused_activation): apply it last, as a post-op.
  std::string fused_activation;

  // The default decision: inputs read as stored, outputs written plain, nothing else.
  KernelBuild start_build() const;
  // A weight as loaded (f32, Keras shape), e.g. weight("kernel").
  const Tensor& weight(const std::string& param) const;
  // A weight reordered once from `user_desc` (describing the Keras bytes) to `want_desc`;
  // cached across plans of the same model, keyed by node, param and desc.
  dnnl::memory weight_memory(const std::string& param, const dnnl::memory::desc& user_desc,
                             const dnnl::memory::desc& want_desc) const;
  // A derived constant (e.g. a re-ordered bias), built once by `make` and cached like above.
  dnnl::memory constant(const std::string& key, const dnnl::memory::desc& want_desc,
                        const std::function<dnnl::memory()>& make) const;
  Error error(const std::string& message) const;
};

// State a kernel prepares once per execution state (see Kernel::bind).
class KernelBinding {
 public:
  virtual ~KernelBinding() = default;
};

// The buffers of one execution state that a step reads and writes.
struct StepBuffers {
  const std::vector<dnnl::memory>& srcs;
  const std::vector<dnnl::memory>& dsts;
  const std::vector<dnnl::memory>& temps;
  const dnnl::memory& scratchpad;  // this step's primitive scratchpad
};

struct ExecContext {
  dnnl::stream& stream;
  const std::vector<dnnl::memory>& srcs;
  const std::vector<dnnl::memory>& dsts;
  const std::vector<dnnl::memory>& temps;
  // Masks ([batch, steps] uint8, 1 = keep), nullptr where there is none.
  const std::vector<const uint8_t*>& src_masks;
  const std::vector<uint8_t*>& dst_masks;  // only for ops that produce_mask()
  const dnnl::memory& scratchpad;          // this step's scratchpad (see add_scratchpad)
  // The plan's thread count (1 or more): C++ loops use it (`omp parallel for
  // num_threads(ctx.threads)`); oneDNN primitives get the same count from the plan, which sets
  // the calling thread's OpenMP thread count for the run and restores it afterwards.
  int threads = 1;
  // What Kernel::bind returned for these buffers (the execution state is used by one run at a
  // time, so a kernel may keep per-run scratch values in it).
  KernelBinding* binding = nullptr;
  // Training: the optimizer step this run belongs to (0 in inference). Training kernels that
  // draw random numbers (dropout) seed them from their node's seed and this step, so a resumed
  // run draws the same masks.
  int64_t step = 0;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Called once per execution state, after the plan placed its buffers: prepares what execute
  // needs over them (argument lists, views), so that execute allocates nothing. The srcs of a
  // graph input are rebound per run with set_data_handle. Default: nothing to prepare.
  virtual std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const;
  // Must be safe to call from several threads at once with different contexts.
  virtual void execute(ExecContext& ctx) const = 0;
  // oneDNN implementation name(s) for --per-node ("jit:avx2"), or "" for plain C++.
  virtual std::string impl_info() const { return ""; }
};

// Where one argument of a primitive call comes from: the step's src / dst / temp i or a constant
// memory (weights), optionally seen through another desc of the same bytes (`view`, e.g. plain
// NHWC seen channels-first, or [B, C] as {B, 1, 1, C} for broadcasting) starting `offset` bytes
// into the buffer.
struct CallArg {
  enum class Source { src, dst, temp, constant };
  Source source = Source::constant;
  int index = 0;
  dnnl::memory constant_memory;  // Source::constant
  dnnl::memory::desc view;       // zero desc: the buffer's own desc
  size_t offset = 0;             // bytes from the start of the buffer

  static CallArg src(int i, dnnl::memory::desc view = {}, size_t offset = 0);
  static CallArg dst(int i, dnnl::memory::desc view = {}, size_t offset = 0);
  static CallArg temp(int i, dnnl::memory::desc view = {}, size_t offset = 0);
  static CallArg constant(dnnl::memory m);
};

// One execution of a oneDNN primitive: DNNL_ARG_* -> where the memory comes from. The step's
// scratchpad is added to every call.
struct PrimitiveCall {
  dnnl::primitive prim;
  std::vector<std::pair<int, CallArg>> args;
};

// An ordered list of primitive calls. bind() resolves every argument over one execution state's
// buffers; run() executes calls through the C API with the prepared argument arrays, refreshing
// only the views of inputs whose data handle changed since the last run.
class PrimitiveSequence {
 public:
  class Binding;

  // Appends a call of the primitive built from `pd` (with onednn::make_attr()), registering its
  // scratchpad in `build` and its implementation name in impl().
  void add(const dnnl::primitive_desc_base& pd, std::vector<std::pair<int, CallArg>> args,
           KernelBuild& build);
  // Appends a call of `prim`, whose scratchpad the caller registered.
  void add(dnnl::primitive prim, std::vector<std::pair<int, CallArg>> args);
  // The distinct implementation names of the calls added from a pd, e.g. "jit:avx2 + simple:any".
  const std::string& impl() const { return impl_; }
  size_t size() const { return calls_.size(); }
  bool empty() const { return calls_.empty(); }

  std::unique_ptr<Binding> bind(const StepBuffers& buffers) const;
  // Runs calls [first, last) (all by default) with `binding` from bind().
  void run(ExecContext& ctx, const Binding& binding, size_t first = 0,
           size_t last = static_cast<size_t>(-1)) const;

 private:
  std::vector<PrimitiveCall> calls_;
  std::string impl_;
};

class PrimitiveSequence::Binding : public KernelBinding {
 public:
  struct View {  // a memory over (base's bytes + offset), refreshed when base's handle changes
    dnnl::memory memory, base;
    size_t offset = 0;
  };
  struct BoundCall {
    std::vector<dnnl_exec_arg_t> args;  // what dnnl_primitive_execute takes
    std::vector<View> src_views;        // views of inputs (graph inputs move between runs)
  };
  std::vector<BoundCall> calls;
  std::vector<dnnl::memory> owned;  // keeps the views and constants alive
};

// The kernel that runs a PrimitiveSequence: one primitive (eltwise, pooling, normalization,
// a reorder), a chain of them (the fusion ops), or none (a view whose bytes alias its input).
class PrimitiveSequenceKernel : public Kernel {
 public:
  // `impl` for --per-node; by default the sequence's implementation names.
  explicit PrimitiveSequenceKernel(PrimitiveSequence calls, std::string impl = "")
      : calls_(std::move(calls)), impl_(impl.empty() ? calls_.impl() : std::move(impl)) {}
  std::unique_ptr<KernelBinding> bind(const StepBuffers& buffers) const override;
  void execute(ExecContext& ctx) const override;
  std::string impl_info() const override { return impl_; }

 protected:
  const PrimitiveSequence& calls() const { return calls_; }

 private:
  PrimitiveSequence calls_;
  std::string impl_;
};

// Collects the distinct implementation names of a kernel's primitives, e.g.
// "jit:avx2 + simple:any".
void add_impl(std::string& impl, const dnnl::primitive_desc_base& pd);

}  // namespace fg
