#include "engine/plan.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/arena_planner.hpp"
#include "engine/memory_budget.hpp"
#include "engine/scoped_omp_threads.hpp"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "framework/op_fusion.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/weight_cache.hpp"

namespace fg {

namespace {
constexpr size_t kAlign = kArenaAlignment;

// A step copying between two memories of the same logical tensor (a reorder in oneDNN terms).
// The buffers may be described in other (byte-identical) dims, e.g. plain NHWC vs nhwc: each is
// seen through the reorder's desc.
struct ReorderStep {
  std::shared_ptr<Kernel> kernel;
  size_t scratchpad_bytes = 0;
};
ReorderStep make_reorder_step(const dnnl::memory::desc& src, const dnnl::memory::desc& dst,
                              const dnnl::engine& engine) {
  dnnl::reorder::primitive_desc pd(engine, src, engine, dst, onednn::make_attr());
  KernelBuild build;
  PrimitiveSequence calls;
  calls.add(pd, {{DNNL_ARG_FROM, CallArg::src(0, src)}, {DNNL_ARG_TO, CallArg::dst(0, dst)}},
            build);
  return {std::make_shared<PrimitiveSequenceKernel>(std::move(calls)), build.scratchpad_bytes};
}

// Quiet-NaN floats over `bytes` (an i32 reads -4194304, a mask byte 0xff or 0xc0 or 0x7f).
void fill_with_nan(void* p, size_t bytes) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float* f = static_cast<float*>(p);
  for (size_t i = 0; i < bytes / sizeof(float); ++i) f[i] = nan;
}

// The NaN and Inf values among n floats: how many, and the first (its flat index and value).
struct NonFinite {
  size_t count = 0;
  size_t first = 0;
  float first_value = 0;
};
NonFinite find_non_finite(const float* p, size_t n) {
  NonFinite found;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) {
      if (found.count++ == 0) {
        found.first = i;
        found.first_value = p[i];
      }
    }
  return found;
}

// "5 non-finite values (NaN or Inf) of 130, the first at index 7 = [0, 1, 2] (nan)".
std::string describe_non_finite(const NonFinite& found, const Dims& shape) {
  std::vector<Dim> index(shape.size());
  size_t rest = found.first;
  for (size_t k = shape.size(); k-- > 0;) {
    index[k] = static_cast<Dim>(rest % static_cast<size_t>(shape[k]));
    rest /= static_cast<size_t>(shape[k]);
  }
  return fmt::format("{} non-finite value{} (NaN or Inf) of {}, the first at index {} = [{}] ({})",
                     found.count, found.count == 1 ? "" : "s", num_elements(shape), found.first,
                     fmt::join(index, ", "), found.first_value);
}

// The kernel of a view step: no call (the output buffer aliases the input's bytes).
std::shared_ptr<Kernel> view_kernel(std::string impl = "view") {
  return std::make_shared<PrimitiveSequenceKernel>(PrimitiveSequence{}, std::move(impl));
}

std::string data_type_name(dnnl::memory::data_type type) {
  switch (type) {
    case dnnl::memory::data_type::f32:
      return "f32";
    case dnnl::memory::data_type::s32:
      return "s32";
    case dnnl::memory::data_type::u8:
      return "u8";
    case dnnl::memory::data_type::undef:
      return "undef";
    default:
      return fmt::format("#{}", static_cast<int>(type));
  }
}

// The plan's check of what compile returned: one desc per input and output, each describing
// the inferred tensor (logical dims its shape or, for rank >= 3, its channels-first view
// {N, C, spatial...}; its data type; at least its bytes).
void check_kernel_build(const KernelBuild& build, const KernelContext& ctx) {
  auto fail = [&](const std::string& what) {
    return Error(fmt::format("internal: compile of op '{}' returned {}", ctx.node.op, what))
        .at(ctx.node.loc)
        .node(ctx.node.name, ctx.node.op)
        .hint(
            "a bug in the op: the layouts its compile returns must describe the inferred "
            "tensors (docs/extending.md)");
  };
  if (!build.kernel) throw fail("no kernel");
  auto check_list = [&](const char* side, const std::vector<dnnl::memory::desc>& descs,
                        const std::vector<TensorType>& types) {
    if (descs.size() != types.size())
      throw fail(fmt::format("{} {} descs for {} {}{}", descs.size(), side, types.size(), side,
                             types.size() == 1 ? "" : "s"));
    for (size_t i = 0; i < descs.size(); ++i) {
      const dnnl::memory::desc& d = descs[i];
      const TensorType& t = types[i];
      const dnnl::memory::dims dims = d.dims();
      const dnnl::memory::dims plain = onednn::to_dims(t.shape);
      const bool dims_ok =
          dims == plain ||
          (t.shape.size() >= 3 && dims == onednn::channels_first_view(t.shape, t.dtype).dims());
      const bool dtype_ok = d.data_type() == onednn::plain_desc(t).data_type();
      const bool size_ok = d.get_size() >= onednn::plain_desc(t).get_size();
      if (dims_ok && dtype_ok && size_ok) continue;
      throw fail(fmt::format(
          "an {} desc that does not describe {} {} ({}): the kernel's desc has "
          "dims [{}], data type {}, {} bytes; the tensor {} has {} bytes",
          side, side, i, format_type(t), fmt::join(dims, ", "), data_type_name(d.data_type()),
          d.get_size(), format_type(t), onednn::plain_desc(t).get_size()));
    }
  };
  check_list("input", build.src_descs, ctx.inputs);
  check_list("output", build.dst_descs, ctx.outputs);
}

// `w` (Keras layout, output channels on the last axis) with channel c multiplied by scale[c].
Tensor scaled_along_last(const Tensor& w, const std::vector<float>& scale) {
  Tensor out(DType::f32, w.shape());
  const float* src = w.data<float>();
  float* dst = out.mutable_data<float>();
  const size_t c = scale.size(), n = w.size();
  for (size_t i = 0; i < n; ++i) dst[i] = src[i] * scale[i % c];
  return out;
}
// The plain bytes of `type` in the logical dims a kernel's non-plain desc uses: for rank 3 and
// more, oneDNN's channels-first order {N, C, spatial...} (the channels-first view, nwc / nhwc
// strides); below that, the plain desc itself. (Dims alone cannot tell: 16x16x16 is both.)
dnnl::memory::desc plain_in_primitive_dims(const TensorType& type) {
  if (type.shape.size() >= 3) return onednn::channels_first_view(type.shape, type.dtype);
  return onednn::plain_desc(type);
}
}  // namespace

struct Plan::ExecState {
  dnnl::stream stream;
  std::shared_ptr<void> arena;
  std::vector<dnnl::memory> memories;  // per buffer
  struct StepArgs {
    std::vector<dnnl::memory> srcs, dsts, temps;
    std::vector<const uint8_t*> src_masks;
    std::vector<uint8_t*> dst_masks;
  };
  std::vector<StepArgs> args;                            // per step
  std::vector<std::unique_ptr<KernelBinding>> bindings;  // per step (Kernel::bind)
};

// The passes of Plan::Plan, in the order they run, and what each decides. Each pass reads the
// results of the ones before it; the emitted steps and buffers go straight into the plan.
struct PlanBuilder {
  using WeightLookup = std::function<const Tensor&(const std::string& param)>;
  Plan& plan;
  const CompiledGraph& graph;
  const std::vector<TensorType>& types;
  const WeightStore& weights;
  WeightCache& cache;
  const bool optimize;
  const Precision precision;
  const dnnl::engine& engine = onednn::cpu_engine();

  std::vector<bool> node_live;               // per node: reaches a graph output
  std::vector<std::vector<int>> consumers;   // per tensor: its live consumer nodes
  std::vector<bool> is_output;               // per tensor: a graph output
  std::vector<int> folded_into;              // per node: the producer it is folded into, or -1
  std::vector<std::string> folded_label;     // per folded node: "folded into <producer>"
  std::map<int, ChannelAffine> affine_of;    // producer -> the normalization folded into it
  std::map<int, std::string> activation_of;  // producer -> the activation fused into it

  void run();
  // Analysis passes.
  void find_live_nodes();
  void find_consumers();
  void fold_batch_norms();
  void fuse_activations();
  bool stays_blocked(int t) const;
  // Step emission, node by node.
  void bind_inputs();
  void emit_steps();
  Error out_of_memory_compiling(int i) const;
  void emit_folded_step(int i);
  bool emit_view_step(int i);
  WeightLookup node_weights(int i);
  void compile_node(int i, const WeightLookup& lookup);
  int input_in_layout(const std::string& node, int t, const dnnl::memory::desc& want);
  int place_output(Plan::Step& step, int t, const dnnl::memory::desc& written, bool holds_folded,
                   std::vector<Plan::Step>& after);
  void pass_mask(Plan::Step& step, const CompiledNode& n, int t);
  // Memory.
  void share_empty_scratchpad();

  int new_buffer(const dnnl::memory::desc& desc);
  int new_scratchpad(size_t bytes);
  void push_step(Plan::Step step, double flops = 0);
  WeightLookup lookup_for(const NodeDef& def) const;
};

Plan::Plan(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
           const WeightStore& weights, WeightCache& cache, int threads, bool optimize,
           size_t max_idle_states, Precision precision)
    : graph_(graph),
      types_(graph.bind(input_shapes)),
      input_shapes_(input_shapes),
      threads_(threads),
      max_idle_states_(max_idle_states) {
  if (threads_ < 1)
    throw Error(fmt::format("internal: a plan needs 1 thread or more, got {}", threads_));
  const ScopedOmpThreads scoped_threads(threads_);
  PlanBuilder{*this, graph, types_, weights, cache, optimize, precision}.run();
  plan_memory();
#ifndef NDEBUG
  if (const std::string problem = arena_problem(); !problem.empty())
    throw Error("internal: the arena plan is wrong: " + problem);
#endif
#if defined(__GLIBC__)
  // Building the kernels freed megabytes of temporaries (weight reorders, oneDNN's kernel
  // generation) in the middle of the heap, where glibc keeps them resident: hand them back.
  malloc_trim(0);
#endif
}

void PlanBuilder::run() {
  plan.tensor_buffer_.assign(graph.tensors().size(), -1);
  plan.mask_buffer_.assign(graph.tensors().size(), -1);
  find_live_nodes();
  find_consumers();
  folded_into.assign(graph.nodes().size(), -1);
  folded_label.assign(graph.nodes().size(), "");
  if (optimize) {
    fold_batch_norms();
    fuse_activations();
  }
  bind_inputs();
  emit_steps();
  share_empty_scratchpad();
}

int PlanBuilder::new_buffer(const dnnl::memory::desc& desc) {
  Plan::Buffer b;
  b.desc = desc;
  b.bytes = desc.get_size();
  plan.buffers_.push_back(b);
  return static_cast<int>(plan.buffers_.size() - 1);
}

// A step's primitive scratchpad: an arena buffer live during that step only (-1 for 0 bytes).
int PlanBuilder::new_scratchpad(size_t bytes) {
  if (bytes == 0) return -1;
  plan.scratchpad_bytes_ = std::max(plan.scratchpad_bytes_, bytes);
  return new_buffer(dnnl::memory::desc({static_cast<dnnl::memory::dim>(bytes)},
                                       dnnl::memory::data_type::u8, dnnl::memory::format_tag::a));
}

void PlanBuilder::push_step(Plan::Step step, double flops) {
  plan.steps_.push_back(std::move(step));
  plan.step_flops_.push_back(flops);
}

// A node's weights by parameter name, or an fg::Error naming the missing one.
PlanBuilder::WeightLookup PlanBuilder::lookup_for(const NodeDef& def) const {
  return [&weights = weights, &def](const std::string& param) -> const Tensor& {
    const Tensor* w = weights.find(weights_node(def) + "." + param);
    if (w == nullptr && param == "kernel" && weights.int8_node(weights_node(def)) != nullptr)
      return weights.dequantized_kernel(weights_node(def));
    if (w == nullptr)
      throw Error(fmt::format("weight '{}.{}' is missing", weights_node(def), param))
          .at(def.loc)
          .node(def.name, def.op)
          .hint("run `graph-runner init` to create weights, or check the weights file");
    return *w;
  };
}

// Live nodes only: those that reach an output.
void PlanBuilder::find_live_nodes() {
  std::vector<bool> live(graph.tensors().size(), false);
  for (int t : graph.output_tensors()) live[t] = true;
  node_live.assign(graph.nodes().size(), false);
  for (int i = static_cast<int>(graph.nodes().size()) - 1; i >= 0; --i) {
    const auto& n = graph.nodes()[i];
    for (int t : n.outputs) node_live[i] = node_live[i] || live[t];
    if (node_live[i])
      for (int t : n.inputs) live[t] = true;
  }
}

// Each tensor's live consumers, and which tensors are graph outputs.
void PlanBuilder::find_consumers() {
  consumers.assign(graph.tensors().size(), {});
  for (size_t i = 0; i < graph.nodes().size(); ++i)
    if (node_live[i])
      for (int t : graph.nodes()[i].inputs) consumers[t].push_back(static_cast<int>(i));
  is_output.assign(graph.tensors().size(), false);
  for (int t : graph.output_tensors()) is_output[t] = true;
}

// Batch normalization folded into the conv before it (optimized plans): the conv's kernel and
// bias are scaled and shifted once, when it is compiled, and the normalization runs no step of
// its own. Only when the conv's output feeds nothing else, is not a graph output and has no mask.
void PlanBuilder::fold_batch_norms() {
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const CompiledNode& norm = graph.nodes()[i];
    if (!node_live[i] || norm.inputs.size() != 1 || norm.outputs.size() != 1) continue;
    const int t = norm.inputs[0];
    const int p = graph.tensors()[t].producer;
    if (p < 0 || is_output[t] || types[t].masked || consumers[t].size() != 1) continue;
    const CompiledNode& producer = graph.nodes()[p];
    const auto* map = dynamic_cast<const ChannelAffineOp*>(norm.op.get());
    if (map == nullptr || producer.outputs.size() != 1 ||
        !producer.op->traits().accepts_channel_affine)
      continue;
    // An int8 kernel stays as calibrated: the normalization runs after it.
    if (precision == Precision::int8 && weights.int8_node(weights_node(*producer.def)) != nullptr)
      continue;
    const WeightLookup lookup = lookup_for(*norm.def);
    const WeightViewLookup weight = [&lookup](const std::string& param) {
      const Tensor& w = lookup(param);
      return WeightView{w.data<float>(), w.shape()};
    };
    ChannelAffine affine;
    if (!map->channel_affine(types[t], weight, affine.scale, affine.shift)) continue;
    affine.from_node = norm.def->name;
    affine_of[p] = std::move(affine);
    folded_into[i] = p;
    folded_label[i] = "folded into " + producer.def->name;
  }
}

// An activation node right after an op that accepts one (or after a normalization folded into
// it) runs as that op's last post-op, on the same conditions.
void PlanBuilder::fuse_activations() {
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const CompiledNode& act = graph.nodes()[i];
    if (!node_live[i] || act.inputs.size() != 1 || act.outputs.size() != 1) continue;
    const auto* fusable = dynamic_cast<const FusableActivationOp*>(act.op.get());
    const std::string activation = fusable ? fusable->fused_activation() : "";
    if (activation.empty()) continue;
    const int t = act.inputs[0];
    const int q = graph.tensors()[t].producer;
    if (q < 0 || is_output[t] || types[t].masked || consumers[t].size() != 1) continue;
    const int p = folded_into[q] >= 0 ? folded_into[q] : q;
    const CompiledNode& producer = graph.nodes()[p];
    if (producer.outputs.size() != 1 || !producer.op->traits().accepts_fused_activation ||
        activation_of.count(p))
      continue;
    activation_of[p] = activation;
    folded_into[i] = p;
    folded_label[i] = "fused into " + producer.def->name;
  }
}

// A tensor a kernel writes in a blocked layout stays so when it is not a graph output, has no
// mask and every live consumer accepts blocked inputs (OpTraits::accepts_blocked_inputs), looking
// through nodes folded into its producer.
bool PlanBuilder::stays_blocked(int t) const {
  if (!optimize || is_output[t] || types[t].masked || consumers[t].empty()) return false;
  for (int c : consumers[t]) {
    if (folded_into[c] >= 0) {  // folded away: its consumers read these bytes
      if (!stays_blocked(graph.nodes()[c].outputs[0])) return false;
    } else if (!graph.nodes()[c].op->traits().accepts_blocked_inputs) {
      return false;
    }
  }
  return true;
}

// Graph inputs: buffers bound to the caller's data at each run, never in the arena.
void PlanBuilder::bind_inputs() {
  for (size_t i = 0; i < graph.input_tensors().size(); ++i) {
    int t = graph.input_tensors()[i];
    int b = new_buffer(onednn::plain_desc(types[t]));
    plan.buffers_[b].input = static_cast<int>(i);
    plan.tensor_buffer_[t] = b;
  }
}

void PlanBuilder::emit_steps() {
  for (size_t node = 0; node < graph.nodes().size(); ++node) {
    const int i = static_cast<int>(node);
    if (!node_live[i]) continue;
    try {
      if (folded_into[i] >= 0) {
        emit_folded_step(i);
      } else if (!emit_view_step(i)) {
        compile_node(i, node_weights(i));
      }
    } catch (const std::bad_alloc&) {
      throw out_of_memory_compiling(i);
    }
  }
}

// std::bad_alloc while node i was compiled, as an fg::Error naming the node, its input shapes
// and the bytes of its outputs.
Error PlanBuilder::out_of_memory_compiling(int i) const {
  const CompiledNode& n = graph.nodes()[i];
  std::vector<Dims> in_shapes;
  for (int t : n.inputs) in_shapes.push_back(types[t].shape);
  int64_t out_bytes = 0;
  for (int t : n.outputs)
    out_bytes += tensor_bytes_within_limit(types[t].shape, types[t].dtype).value_or(0);
  return Error(fmt::format("out of memory while compiling the node for input shapes {} (its "
                           "outputs take {} bytes)",
                           format_input_shapes(in_shapes), out_bytes))
      .at(n.def->loc)
      .node(n.def->name, n.def->op)
      .hint(kOutOfMemoryHint);
}

// Folded into its producer: the output is the producer's bytes, as they are stored.
void PlanBuilder::emit_folded_step(int i) {
  const CompiledNode& n = graph.nodes()[i];
  const int in = n.inputs[0], t = n.outputs[0];
  int b = new_buffer(plan.buffers_[plan.tensor_buffer_[in]].desc);
  plan.buffers_[b].alias = plan.base_of(plan.tensor_buffer_[in]);
  plan.tensor_buffer_[t] = b;
  Plan::Step folded;
  folded.node = i;
  folded.name = n.def->name;
  folded.kernel = view_kernel(folded_label[i]);
  folded.srcs = {plan.tensor_buffer_[in]};
  folded.dsts = {b};
  folded.src_masks = {-1};
  folded.dst_masks = {-1};
  // Its bytes are final only when no later node is folded into the same producer.
  const bool last = consumers[t].size() != 1 || folded_into[consumers[t][0]] != folded_into[i];
  if (last) folded.out_tensors = {t};
  push_step(std::move(folded));
}

// A view (optimized plans, plain input): the output is the input's bytes with another shape; no
// kernel runs. False when the node is not one.
bool PlanBuilder::emit_view_step(int i) {
  const CompiledNode& n = graph.nodes()[i];
  if (!optimize || !n.op->traits().is_view || n.outputs.size() != 1 || n.inputs.size() != 1)
    return false;
  const int in = n.inputs[0], t = n.outputs[0];
  if (plan.buffers_[plan.tensor_buffer_[in]].desc != onednn::plain_desc(types[in])) return false;
  int b = new_buffer(onednn::plain_desc(types[t]));
  plan.buffers_[b].alias = plan.base_of(plan.tensor_buffer_[in]);
  plan.tensor_buffer_[t] = b;
  plan.mask_buffer_[t] = types[t].masked ? plan.mask_buffer_[in] : -1;
  Plan::Step view;
  view.node = i;
  view.name = n.def->name;
  view.kernel = view_kernel();
  view.srcs = {plan.tensor_buffer_[in]};
  view.dsts = {b};
  view.src_masks = {plan.mask_buffer_[in]};
  view.dst_masks = {-1};
  view.out_tensors = {t};
  push_step(std::move(view));
  return true;
}

// The weights node i's kernel sees: as loaded, or with the normalization folded into it
// (kernel scaled along its output axis, bias = bias * scale + shift), owned by the plan so that
// kernels may use them without a copy.
PlanBuilder::WeightLookup PlanBuilder::node_weights(int i) {
  const NodeDef& def = *graph.nodes()[i].def;
  WeightLookup lookup = lookup_for(def);
  const auto affine = affine_of.find(i);
  if (affine == affine_of.end()) return lookup;
  const std::vector<float>& scale = affine->second.scale;
  const std::vector<float>& shift = affine->second.shift;
  const Tensor& kernel = lookup("kernel");
  if (kernel.shape().empty() || kernel.shape().back() != static_cast<Dim>(scale.size()))
    throw Error(fmt::format("internal: cannot fold {} into kernel {}", affine->second.from_node,
                            format_shape(kernel.shape())))
        .node(def.name, def.op);
  auto folded_kernel = std::make_shared<Tensor>(scaled_along_last(kernel, scale));
  auto folded_bias = std::make_shared<Tensor>(DType::f32, Dims{static_cast<Dim>(scale.size())});
  const Tensor* bias = weights.find(weights_node(def) + ".bias");
  for (size_t c = 0; c < scale.size(); ++c)
    folded_bias->mutable_data<float>()[c] =
        (bias ? bias->data<float>()[c] : 0.f) * scale[c] + shift[c];
  plan.folded_weights_.push_back(folded_kernel);
  plan.folded_weights_.push_back(folded_bias);
  return [base = lookup, folded_kernel, folded_bias](const std::string& param) -> const Tensor& {
    if (param == "kernel") return *folded_kernel;
    if (param == "bias") return *folded_bias;
    return base(param);
  };
}

// Builds node i's kernel (Op::compile) and emits its step, with the input-layout reorders before
// it and the to_plain reorders after it that the layouts the kernel chose call for.
void PlanBuilder::compile_node(int i, const WeightLookup& lookup) {
  const CompiledNode& n = graph.nodes()[i];
  const NodeDef& def = *n.def;
  const auto affine = affine_of.find(i);
  KernelContext kctx{engine, def};
  for (int t : n.inputs) {
    kctx.inputs.push_back(types[t]);
    kctx.input_descs.push_back(plan.buffers_[plan.tensor_buffer_[t]].desc);
  }
  for (int t : n.outputs) kctx.outputs.push_back(types[t]);
  kctx.threads = plan.threads_;
  kctx.optimize = optimize;
  kctx.precision = precision;
  if (precision == Precision::int8) kctx.int8 = weights.int8_node(weights_node(def));
  if (affine != affine_of.end()) kctx.channel_affine = &affine->second;
  const auto fused = activation_of.find(i);
  if (fused != activation_of.end()) kctx.fused_activation = fused->second;
  // A producer with nodes folded into it holds their result: its own output is not reported
  // as an intermediate.
  const bool holds_folded = affine != affine_of.end() || fused != activation_of.end();
  kctx.weight_cache = &cache;
  kctx.weight_lookup = &lookup;
  KernelBuild built;
  try {
    built = n.op->compile(kctx);
  } catch (Error& e) {
    if (e.node_name().empty()) e.node(def.name, def.op);
    if (!e.loc().known()) e.at(def.loc);
    throw;
  } catch (const dnnl::error& e) {
    throw Error(fmt::format("oneDNN could not build a primitive for shapes {}: {}",
                            format_shape(kctx.inputs.empty() ? Dims{} : kctx.inputs[0].shape),
                            e.what()))
        .at(def.loc)
        .node(def.name, def.op);
  }
  check_kernel_build(built, kctx);
  Plan::Step step;
  step.node = i;
  step.name = def.name;
  step.kernel = std::move(built.kernel);
  if (built.precision != Precision::f32)
    step.precision = precision_name(built.precision);
  else if (!built.precision_fallback.empty())
    step.precision = "f32: " + built.precision_fallback;
  if (!built.precision_detail.empty()) step.precision += ", " + built.precision_detail;
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    step.srcs.push_back(input_in_layout(def.name, n.inputs[k], built.src_descs[k]));
    step.src_masks.push_back(plan.mask_buffer_[n.inputs[k]]);
  }
  for (const auto& d : built.temp_descs) step.temps.push_back(new_buffer(d));
  step.scratchpad = new_scratchpad(built.scratchpad_bytes);
  std::vector<Plan::Step> after;
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    plan.tensor_buffer_[n.outputs[k]] =
        place_output(step, n.outputs[k], built.dst_descs[k], holds_folded, after);
    pass_mask(step, n, n.outputs[k]);
  }
  push_step(std::move(step),
            graph.node_stats(i, types).flops * static_cast<double>(types[n.outputs[0]].shape[0]));
  for (auto& s : after) push_step(std::move(s));
}

// The buffer a kernel reads tensor t from when it asked for layout `want`: the stored buffer,
// or (another layout) a new one filled by a reorder step of its own before the kernel, so the
// stored copy can die (and its bytes be reused) before the kernel runs.
int PlanBuilder::input_in_layout(const std::string& node, int t, const dnnl::memory::desc& want) {
  const int stored_buffer = plan.tensor_buffer_[t];
  const dnnl::memory::desc& stored = plan.buffers_[stored_buffer].desc;
  if (want == stored) return stored_buffer;
  const bool plain = stored == onednn::plain_desc(types[t]);
  const dnnl::memory::desc from = plain ? plain_in_primitive_dims(types[t]) : stored;
  Plan::Step to_layout;
  to_layout.name = node + "/input_layout";
  ReorderStep reorder = make_reorder_step(from, want, engine);
  to_layout.scratchpad = new_scratchpad(reorder.scratchpad_bytes);
  to_layout.kernel = reorder.kernel;
  to_layout.srcs = {stored_buffer};
  const int converted = new_buffer(want);
  to_layout.dsts = {converted};
  to_layout.src_masks = {-1};
  to_layout.dst_masks = {-1};
  push_step(std::move(to_layout));
  return converted;
}

// Output t, written by `step` in layout `written`: returns the buffer its consumers read. A
// non-plain layout stays when stays_blocked(t); otherwise a to_plain reorder step (appended to
// `after`) converts it for the consumers.
int PlanBuilder::place_output(Plan::Step& step, int t, const dnnl::memory::desc& written,
                              bool holds_folded, std::vector<Plan::Step>& after) {
  const dnnl::memory::desc plain = onednn::plain_desc(types[t]);
  const int b = new_buffer(written);
  step.dsts.push_back(b);
  if (written == plain || stays_blocked(t)) {
    if (!holds_folded) step.out_tensors.push_back(t);
    return b;
  }
  const int pb = new_buffer(plain);
  Plan::Step to_plain;
  to_plain.name = step.name + "/to_plain";
  ReorderStep reorder = make_reorder_step(written, plain_in_primitive_dims(types[t]), engine);
  to_plain.scratchpad = new_scratchpad(reorder.scratchpad_bytes);
  to_plain.kernel = reorder.kernel;
  to_plain.srcs = {b};
  to_plain.dsts = {pb};
  if (!holds_folded) to_plain.out_tensors = {t};
  after.push_back(std::move(to_plain));
  return pb;
}

// Output t's mask: produced by the step (a new [batch, steps] u8 buffer), or passed on from the
// node's first masked input.
void PlanBuilder::pass_mask(Plan::Step& step, const CompiledNode& n, int t) {
  if (!types[t].masked) {
    step.dst_masks.push_back(-1);
    return;
  }
  if (n.op->produces_mask()) {
    const Dim steps = types[t].shape.size() > 1 ? types[t].shape[1] : 1;
    plan.mask_buffer_[t] = new_buffer(dnnl::memory::desc(
        {types[t].shape[0], steps}, dnnl::memory::data_type::u8, dnnl::memory::format_tag::ab));
    step.dst_masks.push_back(plan.mask_buffer_[t]);
    return;
  }
  for (int in : n.inputs)
    if (plan.mask_buffer_[in] >= 0) {
      plan.mask_buffer_[t] = plan.mask_buffer_[in];
      break;
    }
  step.dst_masks.push_back(-1);
}

// Steps without a scratchpad share a 1-byte one (primitives with none never touch it).
void PlanBuilder::share_empty_scratchpad() {
  plan.no_scratchpad_buffer_ = new_scratchpad(1);
  plan.buffers_[plan.no_scratchpad_buffer_].first = 0;
  plan.buffers_[plan.no_scratchpad_buffer_].last = static_cast<int>(plan.steps_.size());
  for (Plan::Step& st : plan.steps_)
    if (st.scratchpad < 0) st.scratchpad = plan.no_scratchpad_buffer_;
}

Plan::~Plan() = default;

void Plan::plan_memory() {
  auto touch = [&](int b, int step) {
    if (b < 0) return;
    Buffer& buf = buffers_[base_of(b)];
    if (buf.first < 0) buf.first = step;
    buf.first = std::min(buf.first, step);
    buf.last = std::max(buf.last, step);
  };
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& st = steps_[s];
    for (auto* list : {&st.srcs, &st.dsts, &st.temps, &st.src_masks, &st.dst_masks})
      for (int b : *list) touch(b, static_cast<int>(s));
    touch(st.scratchpad, static_cast<int>(s));
  }
  // A masked input's mask lives as long as every alias of it: extend through consumers.
  const int end = static_cast<int>(steps_.size());
  for (int t : graph_.output_tensors()) {
    touch(tensor_buffer_[t], end);
    touch(mask_buffer_[t], end);
  }
  const std::vector<int> placed = arena_buffer_ids();
  const ArenaLayout layout = plan_arena(arena_buffers(placed));
  for (size_t k = 0; k < placed.size(); ++k) buffers_[placed[k]].offset = layout.offsets[k];
  arena_bytes_ = layout.total;
  for (auto& buf : buffers_)
    if (buf.alias >= 0) buf.offset = buffers_[buf.alias].offset;
}

// The buffers the arena holds: used, not bound to a graph input, not a view of another.
std::vector<int> Plan::arena_buffer_ids() const {
  std::vector<int> ids;
  for (size_t b = 0; b < buffers_.size(); ++b)
    if (buffers_[b].input < 0 && buffers_[b].alias < 0 && buffers_[b].first >= 0)
      ids.push_back(static_cast<int>(b));
  return ids;
}

std::vector<ArenaBuffer> Plan::arena_buffers(const std::vector<int>& ids) const {
  std::vector<ArenaBuffer> out;
  for (int b : ids) out.push_back({buffers_[b].bytes, buffers_[b].first, buffers_[b].last});
  return out;
}

std::string Plan::arena_problem() const {
  const std::vector<int> ids = arena_buffer_ids();
  ArenaLayout layout;
  layout.total = arena_bytes_;
  for (int b : ids) layout.offsets.push_back(buffers_[b].offset);
  std::string problem = arena_layout_problem(arena_buffers(ids), layout);
  if (!problem.empty()) return problem;
  for (size_t b = 0; b < buffers_.size(); ++b) {
    const Buffer& buf = buffers_[b];
    if (buf.alias >= 0 &&
        (buf.offset != buffers_[buf.alias].offset || buf.bytes > buffers_[buf.alias].bytes))
      return fmt::format("view {} ({} bytes at {}) does not fit its buffer {} ({} bytes at {})", b,
                         buf.bytes, buf.offset, buf.alias, buffers_[buf.alias].bytes,
                         buffers_[buf.alias].offset);
  }
  return "";
}

double Plan::flops() const {
  double total = 0;
  for (double f : step_flops_) total += f;
  return total;
}

size_t Plan::unplanned_bytes() const {
  size_t total = 0;
  for (const auto& b : buffers_)
    if (b.input < 0 && b.alias < 0) total += arena_footprint(b.bytes);
  return total;
}

std::unique_ptr<Plan::ExecState> Plan::make_state() const {
  auto state = std::make_unique<ExecState>();
  const dnnl::engine& engine = onednn::cpu_engine();
  state->stream = dnnl::stream(engine);
  void* p = allocate_arena();
  state->arena =
      std::shared_ptr<void>(p, [](void* q) { ::operator delete[](q, std::align_val_t(kAlign)); });
  char* base = static_cast<char*>(p);
  for (const auto& own : buffers_) {
    Buffer b = own.alias >= 0 ? buffers_[own.alias] : own;  // where the bytes are
    b.desc = own.desc;                                      // how this buffer sees them
    if (b.input >= 0 || b.first < 0) {
      state->memories.emplace_back(b.desc, engine, nullptr);
    } else {
      state->memories.emplace_back(b.desc, engine, base + b.offset);
    }
  }
  for (const auto& st : steps_) {
    ExecState::StepArgs a;
    for (int b : st.srcs) a.srcs.push_back(state->memories[b]);
    for (int b : st.dsts) a.dsts.push_back(state->memories[b]);
    for (int b : st.temps) a.temps.push_back(state->memories[b]);
    for (int b : st.src_masks)
      a.src_masks.push_back(
          b < 0 ? nullptr : static_cast<const uint8_t*>(state->memories[b].get_data_handle()));
    for (int b : st.dst_masks)
      a.dst_masks.push_back(b < 0 ? nullptr
                                  : static_cast<uint8_t*>(state->memories[b].get_data_handle()));
    state->args.push_back(std::move(a));
  }
  for (size_t s = 0; s < steps_.size(); ++s) {
    const ExecState::StepArgs& a = state->args[s];
    const StepBuffers buffers{a.srcs, a.dsts, a.temps, state->memories[steps_[s].scratchpad]};
    try {
      state->bindings.push_back(steps_[s].kernel->bind(buffers));
    } catch (const std::bad_alloc&) {
      throw Error(fmt::format("out of memory while binding step {} ('{}') to its buffers", s,
                              steps_[s].name))
          .node(steps_[s].name, steps_[s].node >= 0 ? graph_.nodes()[steps_[s].node].def->op
                                                    : std::string("reorder"))
          .hint(kOutOfMemoryHint);
    }
  }
  return state;
}

// The zeroed activation arena of one execution state; an allocation failure is an fg::Error
// naming the bytes, the input shapes and the largest buffer with the step that first uses it.
void* Plan::allocate_arena() const {
  const size_t bytes = std::max(arena_bytes_, kAlign);
  void* p = nullptr;
  try {
    p = ::operator new[](bytes, std::align_val_t(kAlign));
  } catch (const std::bad_alloc&) {
    int largest = -1;
    for (int b : arena_buffer_ids())
      if (largest < 0 || buffers_[b].bytes > buffers_[largest].bytes) largest = b;
    const Step* user = largest >= 0 ? &steps_[buffers_[largest].first] : nullptr;
    Error error(fmt::format(
        "out of memory: could not allocate the activation arena of {} bytes for the plan of "
        "input shapes {}{}",
        bytes, format_input_shapes(input_shapes_),
        user ? fmt::format("; its largest buffer ({} bytes) is used first by step '{}'",
                           buffers_[largest].bytes, user->name)
             : std::string()));
    if (user && user->node >= 0) {
      const NodeDef& def = *graph_.nodes()[user->node].def;
      error.at(def.loc).node(def.name, def.op);
    }
    throw error.hint(kOutOfMemoryHint);
  }
  std::memset(p, 0, bytes);
  return p;
}

size_t Plan::idle_states() const {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  return pool_.size();
}

Tensor Plan::copy_out(int tensor, ExecState& state) const {
  const TensorType& type = types_[tensor];
  Tensor out;
  try {
    out = Tensor(type.dtype, type.shape);
  } catch (const std::bad_alloc&) {
    throw Error(fmt::format("out of memory while copying tensor '{}' {} out of the arena",
                            graph_.tensors()[tensor].name, format_type(type)))
        .tensor(graph_.tensors()[tensor].name)
        .hint(kOutOfMemoryHint);
  }
  const dnnl::memory& mem = state.memories[tensor_buffer_[tensor]];
  const dnnl::memory::desc desc = mem.get_desc();
  if (desc == onednn::plain_desc(type)) {
    std::memcpy(out.mutable_data<void>(), mem.get_data_handle(), out.bytes());
  } else {  // a blocked intermediate (--dump-intermediates): reorder it to plain
    dnnl::memory plain(plain_in_primitive_dims(type), mem.get_engine(), out.mutable_data<void>());
    onednn::reorder_now(mem, plain, state.stream);
  }
  return out;
}

// RunOptions::check_numerics: the float32 graph inputs.
void Plan::check_inputs_finite(const std::vector<const Tensor*>& inputs) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]->dtype() != DType::f32) continue;
    const NonFinite found = find_non_finite(inputs[i]->data<float>(), inputs[i]->size());
    if (found.count == 0) continue;
    const std::string& name = graph_.def().inputs[i].name;
    throw Error(fmt::format("check_numerics: graph input '{}' has {}", name,
                            describe_non_finite(found, inputs[i]->shape())))
        .tensor(name)
        .hint("the input holds NaN or Inf before any node runs: check the data fed to it");
  }
}

// RunOptions::check_numerics: the float32 tensors step `step` completes (the stream is idle).
void Plan::check_step_finite(size_t step, ExecState& state) const {
  for (int t : steps_[step].out_tensors) {
    const TensorType& type = types_[t];
    if (type.dtype != DType::f32) continue;
    const dnnl::memory& mem = state.memories[tensor_buffer_[t]];
    NonFinite found;
    if (mem.get_desc() == onednn::plain_desc(type)) {
      found = find_non_finite(static_cast<const float*>(mem.get_data_handle()),
                              static_cast<size_t>(num_elements(type.shape)));
    } else {  // a blocked layout (padding holds no values): read it as plain
      const Tensor plain = copy_out(t, state);
      found = find_non_finite(plain.data<float>(), plain.size());
    }
    if (found.count == 0) continue;
    const TensorInfo& info = graph_.tensors()[t];
    const NodeDef& def = *graph_.nodes()[info.producer].def;
    throw Error(fmt::format("check_numerics: the node's output '{}' has {} (step {} of {}, '{}')",
                            info.name, describe_non_finite(found, type.shape), step, steps_.size(),
                            steps_[step].name))
        .at(def.loc)
        .node(def.name, def.op)
        .tensor(info.name)
        .hint("the first node whose output is not finite; its inputs were finite");
  }
}

std::map<std::string, Tensor> Plan::run(const std::vector<const Tensor*>& inputs,
                                        const RunOptions& options) const {
  if (options.check_numerics) check_inputs_finite(inputs);
  std::unique_ptr<ExecState> state;
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_.empty()) {
      state = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  if (!state) state = make_state();
  // The state goes back to the pool after the run, unless max_idle_states are idle already:
  // then it is freed (outside the lock).
  struct Return {
    const Plan* plan;
    std::unique_ptr<ExecState>& state;
    ~Return() {
      std::unique_ptr<ExecState> extra;
      std::lock_guard<std::mutex> lock(plan->pool_mutex_);
      if (plan->pool_.size() < plan->max_idle_states_)
        plan->pool_.push_back(std::move(state));
      else
        extra = std::move(state);
    }
  } give_back{this, state};

  const ScopedOmpThreads scoped_threads(threads_);
  if (options.fill_arena_with_nan) fill_with_nan(state->arena.get(), arena_bytes_);
  for (size_t i = 0; i < buffers_.size(); ++i) {
    const int input = buffers_[base_of(static_cast<int>(i))].input;
    if (input >= 0) state->memories[i].set_data_handle(const_cast<void*>(inputs[input]->raw()));
  }
  run_steps(*state, options);
  state->stream.wait();
  std::map<std::string, Tensor> outputs;
  const auto& names = graph_.def().outputs;
  const auto& tensors = graph_.tensors();
  for (size_t k = 0; k < names.size(); ++k) {
    int t = graph_.output_tensors()[k];
    if (tensors[t].producer < 0) {
      const Tensor* in = inputs[tensors[t].input_index];
      Tensor copy(in->dtype(), in->shape());
      std::memcpy(copy.mutable_data<void>(), in->raw(), in->bytes());
      outputs[names[k]] = copy;
    } else {
      outputs[names[k]] = copy_out(t, *state);
    }
  }
  return outputs;
}

// Runs every step on `state`, with what `options` asks for after each (profile, intermediates,
// numerics). A failed allocation or oneDNN error in a step is an fg::Error naming the step.
void Plan::run_steps(ExecState& state, const RunOptions& options) const {
  const auto& tensors = graph_.tensors();
  using clock = std::chrono::steady_clock;
  const auto run_start = clock::now();
  if (options.profile) options.profile->clear();
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& st = steps_[s];
    auto& a = state.args[s];
    ExecContext ctx{state.stream,
                    a.srcs,
                    a.dsts,
                    a.temps,
                    a.src_masks,
                    a.dst_masks,
                    state.memories[st.scratchpad],
                    threads_,
                    state.bindings[s].get()};
    const auto step_start = clock::now();
    if (options.observer) options.observer->before_step(s);
    execute_step(s, ctx);
    if (options.observer) options.observer->after_step(s);
    if (options.profile) {
      state.stream.wait();
      options.profile->push_back(step_timing(
          s, std::chrono::duration<double, std::milli>(step_start - run_start).count(),
          std::chrono::duration<double, std::milli>(clock::now() - step_start).count()));
    }
    if (options.intermediates) {
      state.stream.wait();
      for (int t : st.out_tensors) (*options.intermediates)[tensors[t].name] = copy_out(t, state);
    }
    if (options.check_numerics) {
      state.stream.wait();
      check_step_finite(s, state);
    }
  }
}

void Plan::execute_step(size_t s, ExecContext& ctx) const {
  const Step& st = steps_[s];
  auto fail = [&](const std::string& what) {
    Error error(fmt::format("{} while running step {} ('{}')", what, s, st.name));
    if (st.node >= 0) {
      const NodeDef& def = *graph_.nodes()[st.node].def;
      error.at(def.loc).node(def.name, def.op);
    } else {
      error.node(st.name, "reorder");
    }
    return error;
  };
  try {
    st.kernel->execute(ctx);
  } catch (const std::bad_alloc&) {
    throw fail("out of memory").hint(kOutOfMemoryHint);
  } catch (const dnnl::error& e) {
    throw fail(fmt::format("oneDNN error ({})", e.what()));
  }
}

StepTiming Plan::step_timing(size_t s, double start_ms, double duration_ms) const {
  const Step& st = steps_[s];
  StepTiming t;
  t.name = st.name;
  t.impl = st.kernel->impl_info();
  t.precision = st.precision;
  if (!st.precision.empty()) t.impl += " [" + st.precision + "]";
  t.start_ms = start_ms;
  t.duration_ms = duration_ms;
  if (st.node >= 0) {
    const CompiledNode& n = graph_.nodes()[st.node];
    t.op = n.def->op;
    t.branch = n.branch;
    t.flops = step_flops_[s];
  } else {
    t.op = "reorder";
  }
  return t;
}

}  // namespace fg
