#include "engine/training/training_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <new>

#include "engine/arena_planner.hpp"
#include "engine/memory_budget.hpp"
#include "engine/scoped_omp_threads.hpp"
#include "framework/autodiff.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "kernels/weight_cache.hpp"

namespace fg {
namespace {

// Fills its one dst with zeros: d output of an output that reaches no loss.
class ZeroFillKernel final : public Kernel {
 public:
  void execute(ExecContext& ctx) const override {
    std::memset(ctx.dsts[0].get_data_handle(), 0, ctx.dsts[0].get_desc().get_size());
  }
};

// Copies src 0 to dst 0 (same bytes): a view op run forward-only in a training plan.
class CopyKernel final : public Kernel {
 public:
  void execute(ExecContext& ctx) const override {
    std::memcpy(ctx.dsts[0].get_data_handle(), ctx.srcs[0].get_data_handle(),
                ctx.dsts[0].get_desc().get_size());
  }
};

std::shared_ptr<Kernel> sum_kernel(const dnnl::memory::desc& desc, size_t count,
                                   size_t& scratchpad) {
  KernelBuild build;
  PrimitiveSequence calls;
  std::vector<std::pair<int, CallArg>> args;
  for (size_t i = 0; i < count; ++i)
    args.push_back(
        {DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), CallArg::src(static_cast<int>(i))});
  args.push_back({DNNL_ARG_DST, CallArg::dst(0)});
  calls.add(onednn::make_sum_pd(desc, count), std::move(args), build);
  scratchpad = build.scratchpad_bytes;
  return std::make_shared<PrimitiveSequenceKernel>(std::move(calls));
}

bool plain_descs(const std::vector<dnnl::memory::desc>& got,
                 const std::vector<dnnl::memory::desc>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) return false;
  return true;
}

uint64_t node_seed(uint64_t seed, size_t node) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (node + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct NonFinite {
  size_t count = 0, first = 0;
};

NonFinite count_non_finite(const float* p, size_t n) {
  NonFinite r;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]) && r.count++ == 0) r.first = i;
  return r;
}

}  // namespace

struct TrainingPlan::BoundStep {
  std::vector<dnnl::memory> srcs, dsts, temps;
  std::vector<const uint8_t*> src_masks;
  std::vector<uint8_t*> dst_masks;
  dnnl::memory scratchpad;
  std::unique_ptr<KernelBinding> binding;
};

// The passes that build a training plan, in order (see the constructor).
struct TrainingPlanBuilder {
  TrainingPlan& plan;
  ParameterStore& params;
  const TrainingPlanOptions& options;
  const CompiledGraph& graph;
  GradientPlan gradients;
  std::vector<int> tensor_buffer, mask_buffer;  // per tensor
  std::vector<std::vector<int>> contributions;  // per tensor: gradient buffers to sum
  std::vector<size_t> scratchpad_bytes;         // per step
  // Per shared parameter entry (`weights_of`): each user's d loss / d weight, summed last.
  std::map<int, std::vector<int>> weight_contributions;

  int new_buffer(const dnnl::memory::desc& desc, std::string what, void* external = nullptr) {
    TrainingPlan::Buffer b;
    b.desc = desc;
    b.bytes = desc.get_size();
    b.external = external;
    b.what = std::move(what);
    plan.buffers_.push_back(b);
    return static_cast<int>(plan.buffers_.size()) - 1;
  }
  const NodeDef& def(int n) const { return *graph.nodes()[n].def; }
  bool logits_for(int n) const {
    for (const LossTap& tap : plan.losses_)
      if (tap.logits && graph.tensors()[tap.tensor].producer == n) return true;
    return false;
  }

  void plan_gradient_flow();
  void add_inputs();
  void emit_forward(int n);
  void emit_forward_only(int n, TrainingPlan::Step& step);
  void emit_loss_step();
  int total_gradient(int tensor);
  void emit_backward(int n);
  void emit_shared_weight_gradients();
  void place_buffers();
  void bind_steps();

  TrainingKernelContext training_context(int n) const;
  std::vector<TrainingBuild> builds;  // per node (forward and backward kernels)
  std::vector<bool> built;
};

TrainingKernelContext TrainingPlanBuilder::training_context(int n) const {
  const CompiledNode& node = graph.nodes()[n];
  TrainingKernelContext ctx{{onednn::cpu_engine(), *node.def}};
  for (int t : node.inputs) {
    ctx.inputs.push_back(plan.types_[t]);
    ctx.input_descs.push_back(onednn::plain_desc(plan.types_[t]));
  }
  for (int t : node.outputs) ctx.outputs.push_back(plan.types_[t]);
  ctx.threads = plan.threads_;
  ctx.optimize = true;
  for (int p : params.of_node(n))
    ctx.weight_types.push_back({params.entries()[p].value.shape(), DType::f32, false});
  ctx.needs_input_gradient = gradients.needs_input_gradient[n];
  ctx.frozen = !params.node_trains_weights(n);
  ctx.output_logits = logits_for(n);
  ctx.seed = node_seed(options.seed, static_cast<size_t>(n));
  return ctx;
}

void TrainingPlanBuilder::plan_gradient_flow() {
  GradientRequest request;
  for (const LossTap& tap : plan.losses_) request.loss_tensors.push_back(tap.tensor);
  for (size_t n = 0; n < graph.nodes().size(); ++n)
    request.node_trains_weights.push_back(params.node_trains_weights(static_cast<int>(n)));
  gradients = plan_gradients(graph, request);
  tensor_buffer.assign(graph.tensors().size(), -1);
  mask_buffer.assign(graph.tensors().size(), -1);
  contributions.assign(graph.tensors().size(), {});
  builds.resize(graph.nodes().size());
  built.assign(graph.nodes().size(), false);
}

void TrainingPlanBuilder::add_inputs() {
  for (size_t i = 0; i < graph.input_tensors().size(); ++i) {
    const int t = graph.input_tensors()[i];
    tensor_buffer[t] = new_buffer(onednn::plain_desc(plan.types_[t]),
                                  fmt::format("graph input '{}'", graph.tensors()[t].name));
    plan.buffers_[tensor_buffer[t]].first = 0;
    plan.input_buffer_.push_back(tensor_buffer[t]);
  }
}

// A node without a gradient that runs no backward: its inference kernel, on plain layouts.
void TrainingPlanBuilder::emit_forward_only(int n, TrainingPlan::Step& step) {
  const CompiledNode& node = graph.nodes()[n];
  TrainingKernelContext ctx = training_context(n);
  if (node.op->traits().is_view) {
    step.kernel = std::make_shared<CopyKernel>();
    return;
  }
  std::vector<const Tensor*> weights;
  for (int p : params.of_node(n)) weights.push_back(&params.entries()[p].value);
  std::function<const Tensor&(const std::string&)> lookup =
      [&](const std::string& param) -> const Tensor& {
    for (int p : params.of_node(n))
      if (params.entries()[p].spec.param == param) return params.entries()[p].value;
    throw ctx.error(fmt::format("internal: no weight '{}'", param));
  };
  ctx.weight_lookup = &lookup;
  ctx.weight_cache = plan.weight_cache_.get();
  KernelBuild build = node.op->compile(ctx);
  std::vector<dnnl::memory::desc> outs;
  for (const TensorType& t : ctx.outputs) outs.push_back(onednn::plain_desc(t));
  if (!plain_descs(build.src_descs, ctx.input_descs) || !plain_descs(build.dst_descs, outs))
    throw ctx
        .error(fmt::format("op '{}' runs forward-only in training, and its inference kernel "
                           "asks for a blocked layout",
                           node.def->op))
        .hint("give the op a gradient (compile_training works on plain layouts)");
  step.kernel = std::move(build.kernel);
  for (const auto& d : build.temp_descs)
    step.temps.push_back(new_buffer(d, fmt::format("temporary of node '{}'", node.def->name)));
  scratchpad_bytes.back() = build.scratchpad_bytes;
}

void TrainingPlanBuilder::emit_forward(int n) {
  const CompiledNode& node = graph.nodes()[n];
  TrainingPlan::Step step;
  step.kind = TrainingPlan::StepKind::forward;
  step.node = n;
  step.name = node.def->name;
  scratchpad_bytes.push_back(0);
  for (int t : node.inputs) {
    step.srcs.push_back(tensor_buffer[t]);
    step.src_masks.push_back(mask_buffer[t]);
  }
  if (node.op->has_gradient()) {
    TrainingKernelContext ctx = training_context(n);
    node.op->compile_training(ctx, builds[n]);
    built[n] = true;
    const TrainingBuild& b = builds[n];
    for (int p : params.of_node(n))
      step.srcs.push_back(new_buffer(onednn::plain_desc(params.entries()[p].value.shape()),
                                     params.entries()[p].key,
                                     params.entries()[p].value.mutable_data<float>()));
    step.kernel =
        b.forward.kernel ? std::shared_ptr<Kernel>(std::move(builds[n].forward.kernel)) : nullptr;
    if (!step.kernel) throw ctx.error("internal: compile_training returned no forward kernel");
    for (const auto& d : b.forward.temp_descs)
      step.temps.push_back(new_buffer(d, fmt::format("temporary of node '{}'", node.def->name)));
    scratchpad_bytes.back() = b.forward.scratchpad_bytes;
  } else {
    emit_forward_only(n, step);
  }
  for (size_t k = 0; k < node.outputs.size(); ++k) {
    const int t = node.outputs[k];
    tensor_buffer[t] = new_buffer(onednn::plain_desc(plan.types_[t]),
                                  fmt::format("the output of node '{}'", node.def->name));
    step.dsts.push_back(tensor_buffer[t]);
    if (plan.types_[t].masked) {
      if (node.op->produces_mask()) {
        const Dim steps = plan.types_[t].shape.size() > 1 ? plan.types_[t].shape[1] : 1;
        mask_buffer[t] = new_buffer(
            dnnl::memory::desc({plan.types_[t].shape[0], steps}, dnnl::memory::data_type::u8,
                               dnnl::memory::format_tag::ab),
            fmt::format("the mask of node '{}'", node.def->name));
      } else {
        for (int in : node.inputs)
          if (mask_buffer[in] >= 0) {
            mask_buffer[t] = mask_buffer[in];
            break;
          }
      }
    }
    step.dst_masks.push_back(node.op->produces_mask() ? mask_buffer[t] : -1);
  }
  if (built[n])
    for (const auto& d : builds[n].saved_descs)
      step.dsts.push_back(
          new_buffer(d, fmt::format("saved for the backward of '{}'", node.def->name)));
  plan.steps_.push_back(std::move(step));
}

void TrainingPlanBuilder::emit_loss_step() {
  TrainingPlan::Step step;
  step.kind = TrainingPlan::StepKind::loss;
  step.name = "loss";
  scratchpad_bytes.push_back(0);
  for (size_t k = 0; k < plan.losses_.size(); ++k) {
    const int t = plan.losses_[k].tensor;
    if (plan.types_[t].dtype != DType::f32)
      throw Error(fmt::format("the loss reads '{}', an int32 tensor: losses need float32",
                              graph.tensors()[t].name));
    const int g = new_buffer(onednn::plain_desc(plan.types_[t].shape, DType::f32),
                             fmt::format("d loss / d '{}'", graph.tensors()[t].name));
    step.srcs.push_back(tensor_buffer[t]);
    step.dsts.push_back(g);
    plan.prediction_buffer_.push_back(tensor_buffer[t]);
    plan.prediction_gradient_buffer_.push_back(g);
    contributions[t].push_back(g);
  }
  plan.loss_step_ = plan.steps_.size();
  plan.steps_.push_back(std::move(step));
}

// The buffer holding the complete d loss / d tensor: its one contribution, the sum of several
// (a step added here), or zeros when nothing reached it.
int TrainingPlanBuilder::total_gradient(int tensor) {
  std::vector<int>& parts = contributions[tensor];
  const auto desc = onednn::plain_desc(plan.types_[tensor].shape, DType::f32);
  const std::string name = graph.tensors()[tensor].name;
  if (parts.size() == 1) return parts[0];
  TrainingPlan::Step step;
  step.name = name + (parts.empty() ? "/zero_gradient" : "/sum_gradients");
  step.dsts.push_back(new_buffer(desc, fmt::format("d loss / d '{}'", name)));
  scratchpad_bytes.push_back(0);
  if (parts.empty()) {
    step.kind = TrainingPlan::StepKind::zero;
    step.kernel = std::make_shared<ZeroFillKernel>();
  } else {
    step.kind = TrainingPlan::StepKind::sum;
    step.srcs = parts;
    step.kernel = sum_kernel(desc, parts.size(), scratchpad_bytes.back());
  }
  const int total = step.dsts[0];
  plan.steps_.push_back(std::move(step));
  parts = {total};
  return total;
}

void TrainingPlanBuilder::emit_backward(int n) {
  const CompiledNode& node = graph.nodes()[n];
  std::vector<int> diff_outputs;
  for (int t : node.outputs) diff_outputs.push_back(total_gradient(t));
  const TrainingPlan::Step& fwd =
      *std::find_if(plan.steps_.begin(), plan.steps_.end(), [&](const TrainingPlan::Step& s) {
        return s.kind == TrainingPlan::StepKind::forward && s.node == n;
      });
  TrainingPlan::Step step;
  step.kind = TrainingPlan::StepKind::backward;
  step.node = n;
  step.name = node.def->name + "/backward";
  step.srcs = fwd.srcs;                                                 // inputs, weights
  step.srcs.insert(step.srcs.end(), fwd.dsts.begin(), fwd.dsts.end());  // outputs, saved
  step.srcs.insert(step.srcs.end(), diff_outputs.begin(), diff_outputs.end());
  step.src_masks = fwd.src_masks;
  TrainingBuild& b = builds[n];
  step.kernel = std::shared_ptr<Kernel>(std::move(b.backward.kernel));
  if (!step.kernel) throw Error("internal: compile_training returned no backward kernel");
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const int t = node.inputs[i];
    const int g = new_buffer(onednn::plain_desc(plan.types_[t].shape, DType::f32),
                             fmt::format("d loss / d input {} of '{}'", i, node.def->name));
    step.dsts.push_back(g);
    if (gradients.needs_input_gradient[n][i]) contributions[t].push_back(g);
  }
  for (int p : params.of_node(n)) {
    StoredParameter& sp = params.entries()[p];
    // a shared weight's gradient is the sum of its users' (emit_shared_weight_gradients)
    const bool shared = sp.trainable && params.is_shared(p);
    void* ext = sp.trainable && !shared ? sp.gradient.mutable_data<float>() : nullptr;
    const int g = new_buffer(onednn::plain_desc(sp.value.shape()),
                             fmt::format("d loss / d {} (node '{}')", sp.key, node.def->name), ext);
    step.dsts.push_back(g);
    if (shared) weight_contributions[p].push_back(g);
  }
  for (const auto& d : b.backward.temp_descs)
    step.temps.push_back(new_buffer(d, fmt::format("temporary of '{}'", step.name)));
  scratchpad_bytes.push_back(b.backward.scratchpad_bytes);
  plan.steps_.push_back(std::move(step));
}

// A weight that several nodes use (`weights_of`) gets the sum of their gradients, as Keras
// sums the gradients of a layer called more than once.
void TrainingPlanBuilder::emit_shared_weight_gradients() {
  for (const auto& [p, parts] : weight_contributions) {
    StoredParameter& sp = params.entries()[p];
    const auto desc = onednn::plain_desc(sp.value.shape());
    TrainingPlan::Step step;
    step.kind = TrainingPlan::StepKind::sum;
    step.name = sp.key + "/sum_gradients";
    step.srcs = parts;
    step.dsts.push_back(
        new_buffer(desc, "d loss / d " + sp.key, sp.gradient.mutable_data<float>()));
    scratchpad_bytes.push_back(0);
    step.kernel = sum_kernel(desc, parts.size(), scratchpad_bytes.back());
    plan.steps_.push_back(std::move(step));
  }
}

// Lifetimes from the steps' uses, then one arena for every buffer that is not external.
void TrainingPlanBuilder::place_buffers() {
  for (size_t s = 0; s < plan.steps_.size(); ++s) {
    TrainingPlan::Step& step = plan.steps_[s];
    if (scratchpad_bytes[s] > 0)
      step.scratchpad =
          new_buffer(dnnl::memory::desc({static_cast<dnnl::memory::dim>(scratchpad_bytes[s])},
                                        dnnl::memory::data_type::u8, dnnl::memory::format_tag::a),
                     "scratchpad of " + step.name);
    auto use = [&](int b) {
      if (b < 0) return;
      auto& buf = plan.buffers_[b];
      buf.first = buf.first < 0 ? static_cast<int>(s) : std::min(buf.first, static_cast<int>(s));
      buf.last = std::max(buf.last, static_cast<int>(s));
    };
    for (const auto* list : {&step.srcs, &step.dsts, &step.temps, &step.src_masks, &step.dst_masks})
      for (int b : *list) use(b);
    use(step.scratchpad);
  }
  // The batch's inputs stay for the whole step: find_non_finite reruns the forward after a
  // backward, which must not read ids or pixels that a later temporary overwrote.
  for (int b : plan.input_buffer_)
    plan.buffers_[b].last = std::max(0, static_cast<int>(plan.steps_.size()) - 1);
  std::vector<ArenaBuffer> arena;
  std::vector<int> ids;
  for (size_t b = 0; b < plan.buffers_.size(); ++b) {
    auto& buf = plan.buffers_[b];
    if (buf.external != nullptr || buf.first < 0) continue;
    ids.push_back(static_cast<int>(b));
    arena.push_back({std::max<size_t>(buf.bytes, 1), buf.first, buf.last, false});
  }
  const ArenaLayout layout = plan_arena(arena);
  for (size_t i = 0; i < ids.size(); ++i) plan.buffers_[ids[i]].offset = layout.offsets[i];
  plan.arena_bytes_ = std::max<size_t>(layout.total, kArenaAlignment);
  // Refused before allocating: an arena beyond physical memory would be granted by overcommit
  // and end in the OOM killer when the steps touch it.
  const uint64_t physical = physical_memory_bytes();
  if (physical > 0 && plan.arena_bytes_ > physical)
    throw Error(fmt::format("the training plan for input shapes {} needs an arena of {} bytes, "
                            "more than this machine's {} bytes of memory",
                            format_input_shapes(plan.input_shapes_), plan.arena_bytes_, physical))
        .hint("train with a smaller --batch-size");
  void* p = nullptr;
  try {
    p = ::operator new[](plan.arena_bytes_, std::align_val_t(kArenaAlignment));
  } catch (const std::bad_alloc&) {
    throw Error(fmt::format("out of memory: the training plan's arena needs {} bytes at batch {}",
                            plan.arena_bytes_, plan.batch()))
        .hint("train with a smaller --batch-size");
  }
  if (options.fill_arena_with_nan)  // debug: reads before writes show as NaN
    std::fill_n(static_cast<float*>(p), plan.arena_bytes_ / sizeof(float),
                std::numeric_limits<float>::quiet_NaN());
  else
    std::memset(p, 0, plan.arena_bytes_);
  plan.arena_ = std::shared_ptr<void>(
      p, [](void* q) { ::operator delete[](q, std::align_val_t(kArenaAlignment)); });
  const auto& eng = onednn::cpu_engine();
  for (auto& buf : plan.buffers_) {
    void* where = buf.external;
    if (where == nullptr) where = static_cast<std::byte*>(plan.arena_.get()) + buf.offset;
    plan.memories_.emplace_back(buf.desc, eng, where);
  }
}

void TrainingPlanBuilder::bind_steps() {
  const auto& eng = onednn::cpu_engine();
  static const dnnl::memory::desc one_byte({1}, dnnl::memory::data_type::u8,
                                           dnnl::memory::format_tag::a);
  for (const TrainingPlan::Step& step : plan.steps_) {
    auto bound = std::make_unique<TrainingPlan::BoundStep>();
    for (int b : step.srcs) bound->srcs.push_back(plan.memories_[b]);
    for (int b : step.dsts) bound->dsts.push_back(plan.memories_[b]);
    for (int b : step.temps) bound->temps.push_back(plan.memories_[b]);
    auto mask_ptr = [&](int b) {
      return b < 0 ? nullptr : static_cast<uint8_t*>(plan.memories_[b].get_data_handle());
    };
    for (int b : step.src_masks) bound->src_masks.push_back(mask_ptr(b));
    for (int b : step.dst_masks) bound->dst_masks.push_back(mask_ptr(b));
    bound->scratchpad =
        step.scratchpad >= 0 ? plan.memories_[step.scratchpad] : dnnl::memory(one_byte, eng);
    if (step.kernel)
      bound->binding =
          step.kernel->bind(StepBuffers{bound->srcs, bound->dsts, bound->temps, bound->scratchpad});
    plan.bound_.push_back(std::move(bound));
  }
}

TrainingPlan::TrainingPlan(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
                           const std::vector<LossTap>& losses, ParameterStore& params,
                           const TrainingPlanOptions& options)
    : graph_(graph),
      input_shapes_(input_shapes),
      types_(graph.bind(input_shapes)),
      losses_(losses),
      threads_(std::max(1, options.threads)),
      weight_cache_(std::make_unique<WeightCache>()) {
  check_tensor_sizes();
  const ScopedOmpThreads scoped_threads(threads_);
  TrainingPlanBuilder b{*this, params, options, graph, {}, {}, {}, {}, {}, {}, {}, {}};
  b.plan_gradient_flow();
  b.add_inputs();
  for (size_t n = 0; n < graph.nodes().size(); ++n) b.emit_forward(static_cast<int>(n));
  b.emit_loss_step();
  for (int n : b.gradients.backward_order) b.emit_backward(n);
  b.emit_shared_weight_gradients();
  b.place_buffers();
  b.bind_steps();
  std::vector<TensorType> types = types_;
  for (const Step& st : steps_) {
    double f = 0;
    if (st.node >= 0 && (st.kind == StepKind::forward || st.kind == StepKind::backward)) {
      f = graph.node_stats(st.node, types).flops * static_cast<double>(batch());
      if (st.kind == StepKind::backward) f *= 2;
    }
    step_flops_.push_back(f);
  }
  stream_ = std::make_unique<dnnl::stream>(onednn::cpu_engine());
}

// Before any primitive exists: oneDNN 2.6 does not survive tensors of 2^31 elements or more
// (a SIGFPE while creating the descriptor), and a tensor larger than physical memory can only
// end in the OOM killer. Both are an fg::Error naming the tensor.
void TrainingPlan::check_tensor_sizes() const {
  const uint64_t physical = physical_memory_bytes();
  for (size_t t = 0; t < types_.size(); ++t) {
    const int64_t elements = num_elements(types_[t].shape);
    const uint64_t bytes = static_cast<uint64_t>(elements) * 4;
    const bool too_many = elements >= (int64_t(1) << 31);
    if (!too_many && (physical == 0 || bytes <= physical)) continue;
    throw Error(fmt::format("training at input shapes {}: tensor '{}' {} has {} elements ({} "
                            "bytes), more than {}",
                            format_input_shapes(input_shapes_), graph_.tensors()[t].name,
                            format_shape(types_[t].shape), elements, bytes,
                            too_many ? "oneDNN's kernels take (2^31 - 1 elements)"
                                     : fmt::format("this machine's {} bytes of memory", physical)))
        .hint("train with a smaller --batch-size");
  }
}

TrainingPlan::~TrainingPlan() = default;

void* TrainingPlan::input(size_t i) {
  return memories_.at(input_buffer_.at(i)).get_data_handle();
}
const float* TrainingPlan::prediction(size_t k) const {
  return static_cast<const float*>(memories_.at(prediction_buffer_.at(k)).get_data_handle());
}
float* TrainingPlan::prediction_gradient(size_t k) {
  return static_cast<float*>(memories_.at(prediction_gradient_buffer_.at(k)).get_data_handle());
}
const TensorType& TrainingPlan::prediction_type(size_t k) const {
  return types_.at(losses_.at(k).tensor);
}

void TrainingPlan::run_steps(size_t first, size_t last, int64_t step, bool check) {
  const ScopedOmpThreads scoped_threads(threads_);
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (size_t s = first; s < last; ++s) {
    const Step& st = steps_[s];
    if (!st.kernel) continue;
    const auto t0 = Clock::now();
    BoundStep& b = *bound_[s];
    ExecContext ctx{*stream_,    b.srcs,       b.dsts,   b.temps,        b.src_masks,
                    b.dst_masks, b.scratchpad, threads_, b.binding.get()};
    ctx.step = step;
    st.kernel->execute(ctx);
    if (profile_ != nullptr) {
      stream_->wait();
      const auto ms = [&](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
      };
      StepTiming t;
      t.name = st.name;
      t.op = st.node >= 0 ? graph_.nodes()[st.node].def->op : "sum";
      t.branch = st.node >= 0 ? graph_.nodes()[st.node].branch : "";
      t.impl = st.kernel->impl_info();
      t.start_ms = ms(start, t0);
      t.duration_ms = ms(t0, Clock::now());
      t.flops = step_flops_[s];
      profile_->push_back(std::move(t));
    }
    if (check) {
      stream_->wait();
      std::string problem = check_step(s);
      if (!problem.empty()) throw Error(problem);
    }
  }
  stream_->wait();
}

void TrainingPlan::forward(int64_t step) {
  run_steps(0, loss_step_, step, false);
}
void TrainingPlan::backward(int64_t step) {
  run_steps(loss_step_ + 1, steps_.size(), step, false);
}

// The float dsts a step wrote (outputs, gradients; not saved workspaces), checked for NaN/Inf.
std::string TrainingPlan::check_step(size_t s) const {
  const Step& st = steps_[s];
  const size_t outputs =
      st.kind == StepKind::forward ? graph_.nodes()[st.node].outputs.size() : st.dsts.size();
  for (size_t i = 0; i < std::min(outputs, st.dsts.size()); ++i) {
    const Buffer& buf = buffers_[st.dsts[i]];
    if (buf.desc.data_type() != dnnl::memory::data_type::f32) continue;
    const size_t n = buf.bytes / sizeof(float);
    const NonFinite nf =
        count_non_finite(static_cast<const float*>(memories_[st.dsts[i]].get_data_handle()), n);
    if (nf.count == 0) continue;
    const std::string op =
        st.node >= 0 ? fmt::format(" (op {})", graph_.nodes()[st.node].def->op) : "";
    const std::string step = st.kind == StepKind::forward ? "" : " in step '" + st.name + "'";
    return fmt::format("{}{}{}: {} of {} values are NaN or Inf, the first at index {}", buf.what,
                       op, step, nf.count, n, nf.first);
  }
  return "";
}

std::string TrainingPlan::find_non_finite(int64_t step) {
  try {
    run_steps(0, loss_step_, step, true);
    run_steps(loss_step_ + 1, steps_.size(), step, true);
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

double TrainingPlan::flops() const {
  double f = 0;
  for (double x : step_flops_) f += x;
  return f;
}

std::string TrainingPlan::arena_problem() const {
  std::vector<ArenaBuffer> arena;
  ArenaLayout layout;
  for (const Buffer& b : buffers_) {
    if (b.external != nullptr || b.first < 0) continue;
    arena.push_back({std::max<size_t>(b.bytes, 1), b.first, b.last, false});
    layout.offsets.push_back(b.offset);
  }
  layout.total = arena_bytes_;
  return arena_layout_problem(arena, layout);
}

}  // namespace fg
