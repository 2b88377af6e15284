#include "engine/plan.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "kernels/onednn/onednn.hpp"
#include "kernels/weight_cache.hpp"

namespace fg {

namespace {
constexpr size_t kAlign = 64;
size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

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
dnnl::memory::desc plain_like(const TensorType& type) {
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

Plan::Plan(const CompiledGraph& graph, const std::vector<Dims>& input_shapes,
           const WeightStore& weights, WeightCache& cache, int threads, bool optimize)
    : graph_(graph), threads_(threads) {
  types_ = graph.bind(input_shapes);
  omp_set_num_threads(threads_);
  const dnnl::engine& engine = onednn::cpu_engine();
  const auto& tensors = graph.tensors();
  tensor_buffer_.assign(tensors.size(), -1);
  mask_buffer_.assign(tensors.size(), -1);

  auto new_buffer = [&](const dnnl::memory::desc& desc) {
    Buffer b;
    b.desc = desc;
    b.bytes = desc.get_size();
    buffers_.push_back(b);
    return static_cast<int>(buffers_.size() - 1);
  };
  // A step's primitive scratchpad: an arena buffer live during that step only (-1 for 0 bytes).
  auto new_scratchpad = [&](size_t bytes) {
    if (bytes == 0) return -1;
    scratchpad_bytes_ = std::max(scratchpad_bytes_, bytes);
    return new_buffer(dnnl::memory::desc({static_cast<dnnl::memory::dim>(bytes)},
                                         dnnl::memory::data_type::u8, dnnl::memory::format_tag::a));
  };
  auto mask_buffer_desc = [&](const TensorType& t) {
    Dim steps = t.shape.size() > 1 ? t.shape[1] : 1;
    return dnnl::memory::desc({t.shape[0], steps}, dnnl::memory::data_type::u8,
                              dnnl::memory::format_tag::ab);
  };

  for (size_t i = 0; i < graph.input_tensors().size(); ++i) {
    int t = graph.input_tensors()[i];
    int b = new_buffer(onednn::plain_desc(types_[t]));
    buffers_[b].input = static_cast<int>(i);
    tensor_buffer_[t] = b;
  }

  // Live nodes only: those that reach an output.
  std::vector<bool> live(tensors.size(), false);
  for (int t : graph.output_tensors()) live[t] = true;
  std::vector<bool> node_live(graph.nodes().size(), false);
  for (int i = static_cast<int>(graph.nodes().size()) - 1; i >= 0; --i) {
    const auto& n = graph.nodes()[i];
    for (int t : n.outputs) node_live[i] = node_live[i] || live[t];
    if (node_live[i])
      for (int t : n.inputs) live[t] = true;
  }

  // Each tensor's live consumers, and which tensors are graph outputs.
  std::vector<std::vector<int>> consumers(tensors.size());
  for (size_t i = 0; i < graph.nodes().size(); ++i)
    if (node_live[i])
      for (int t : graph.nodes()[i].inputs) consumers[t].push_back(static_cast<int>(i));
  std::vector<bool> is_output(tensors.size(), false);
  for (int t : graph.output_tensors()) is_output[t] = true;
  // A node's weights by parameter name, or an fg::Error naming the missing one.
  auto lookup_for = [&](const NodeDef& def) {
    return std::function<const Tensor&(const std::string&)>(
        [&weights, &def](const std::string& param) -> const Tensor& {
          const Tensor* w = weights.find(def.name + "." + param);
          if (w == nullptr)
            throw Error(fmt::format("weight '{}.{}' is missing", def.name, param))
                .at(def.loc)
                .node(def.name, def.op)
                .hint("run `graph-runner init` to create weights, or check the weights file");
          return *w;
        });
  };

  // Batch normalization folded into the conv before it (optimized plans): the conv's kernel and
  // bias are scaled and shifted once, here, and the normalization runs no step of its own. Only
  // when the conv's output feeds nothing else, is not a graph output and has no mask.
  std::vector<int> folded_into(graph.nodes().size(), -1);       // folded node -> its producer
  std::vector<std::string> folded_label(graph.nodes().size());  // "folded into <producer>"
  std::map<int, ChannelAffine> affine_of;                       // producer -> the folded map
  for (size_t i = 0; optimize && i < graph.nodes().size(); ++i) {
    const CompiledNode& norm = graph.nodes()[i];
    if (!node_live[i] || norm.inputs.size() != 1 || norm.outputs.size() != 1) continue;
    const int t = norm.inputs[0];
    const int p = tensors[t].producer;
    if (p < 0 || is_output[t] || types_[t].masked || consumers[t].size() != 1) continue;
    const CompiledNode& producer = graph.nodes()[p];
    if (producer.outputs.size() != 1 || !producer.op->accepts_channel_affine()) continue;
    KernelContext nctx{engine, *norm.def};
    nctx.inputs = {types_[t]};
    auto lookup = lookup_for(*norm.def);
    nctx.weight_lookup = &lookup;
    ChannelAffine affine;
    if (!norm.op->channel_affine(nctx, affine.scale, affine.shift)) continue;
    affine.from_node = norm.def->name;
    affine_of[p] = std::move(affine);
    folded_into[i] = p;
    folded_label[i] = "folded into " + producer.def->name;
  }
  // An activation node right after an op that accepts one (or after a normalization folded into
  // it) runs as that op's last post-op, on the same conditions.
  std::map<int, std::string> activation_of;  // producer -> the fused activation
  for (size_t i = 0; optimize && i < graph.nodes().size(); ++i) {
    const CompiledNode& act = graph.nodes()[i];
    if (!node_live[i] || act.inputs.size() != 1 || act.outputs.size() != 1) continue;
    const std::string activation = act.op->fused_activation();
    if (activation.empty()) continue;
    const int t = act.inputs[0];
    const int q = tensors[t].producer;
    if (q < 0 || is_output[t] || types_[t].masked || consumers[t].size() != 1) continue;
    const int p = folded_into[q] >= 0 ? folded_into[q] : q;
    const CompiledNode& producer = graph.nodes()[p];
    if (producer.outputs.size() != 1 || !producer.op->accepts_fused_activation() ||
        activation_of.count(p))
      continue;
    activation_of[p] = activation;
    folded_into[i] = p;
    folded_label[i] = "fused into " + producer.def->name;
  }

  // A tensor a kernel writes in a blocked layout stays so when it is not a graph output, has no
  // mask and every live consumer accepts blocked inputs (Op::accepts_blocked_inputs), looking
  // through nodes folded into its producer.
  std::function<bool(int)> stays_blocked = [&](int t) {
    if (is_output[t] || types_[t].masked || consumers[t].empty()) return false;
    for (int c : consumers[t]) {
      if (folded_into[c] >= 0) {  // folded away: its consumers read these bytes
        if (!stays_blocked(graph.nodes()[c].outputs[0])) return false;
      } else if (!graph.nodes()[c].op->accepts_blocked_inputs()) {
        return false;
      }
    }
    return true;
  };

  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    if (!node_live[i]) continue;
    const CompiledNode& n = graph.nodes()[i];
    const NodeDef& def = *n.def;
    if (folded_into[i] >= 0) {
      // Folded into its producer: the output is the producer's bytes, as they are stored.
      const int in = n.inputs[0], t = n.outputs[0];
      int b = new_buffer(buffers_[tensor_buffer_[in]].desc);
      buffers_[b].alias = base_of(tensor_buffer_[in]);
      tensor_buffer_[t] = b;
      Step folded;
      folded.node = static_cast<int>(i);
      folded.name = def.name;
      folded.kernel = view_kernel(folded_label[i]);
      folded.srcs = {tensor_buffer_[in]};
      folded.dsts = {b};
      folded.src_masks = {-1};
      folded.dst_masks = {-1};
      // Its bytes are final only when no later node is folded into the same producer.
      const bool last = consumers[t].size() != 1 || folded_into[consumers[t][0]] != folded_into[i];
      if (last) folded.out_tensors = {t};
      steps_.push_back(std::move(folded));
      step_flops_.push_back(0);
      continue;
    }
    if (optimize && n.op->is_view() && n.outputs.size() == 1 && n.inputs.size() == 1 &&
        buffers_[tensor_buffer_[n.inputs[0]]].desc == onednn::plain_desc(types_[n.inputs[0]])) {
      // A view: the output is the input's bytes with another shape; no kernel runs.
      const int in = n.inputs[0], t = n.outputs[0];
      int b = new_buffer(onednn::plain_desc(types_[t]));
      buffers_[b].alias = base_of(tensor_buffer_[in]);
      tensor_buffer_[t] = b;
      mask_buffer_[t] = types_[t].masked ? mask_buffer_[in] : -1;
      Step view;
      view.node = static_cast<int>(i);
      view.name = def.name;
      view.kernel = view_kernel();
      view.srcs = {tensor_buffer_[in]};
      view.dsts = {b};
      view.src_masks = {mask_buffer_[in]};
      view.dst_masks = {-1};
      view.out_tensors = {t};
      steps_.push_back(std::move(view));
      step_flops_.push_back(0);
      continue;
    }
    std::function<const Tensor&(const std::string&)> lookup = lookup_for(def);
    const auto affine = affine_of.find(static_cast<int>(i));
    if (affine != affine_of.end()) {
      // The folded kernel and bias, owned by the plan (kernels may use them without a copy).
      const std::vector<float>& scale = affine->second.scale;
      const std::vector<float>& shift = affine->second.shift;
      const Tensor& kernel = lookup("kernel");
      if (kernel.shape().empty() || kernel.shape().back() != static_cast<Dim>(scale.size()))
        throw Error(fmt::format("internal: cannot fold {} into kernel {}", affine->second.from_node,
                                format_shape(kernel.shape())))
            .node(def.name, def.op);
      auto folded_kernel = std::make_shared<Tensor>(scaled_along_last(kernel, scale));
      auto folded_bias = std::make_shared<Tensor>(DType::f32, Dims{static_cast<Dim>(scale.size())});
      const Tensor* bias = weights.find(def.name + ".bias");
      for (size_t c = 0; c < scale.size(); ++c)
        folded_bias->mutable_data<float>()[c] =
            (bias ? bias->data<float>()[c] : 0.f) * scale[c] + shift[c];
      folded_weights_.push_back(folded_kernel);
      folded_weights_.push_back(folded_bias);
      lookup = [base = lookup, folded_kernel,
                folded_bias](const std::string& param) -> const Tensor& {
        if (param == "kernel") return *folded_kernel;
        if (param == "bias") return *folded_bias;
        return base(param);
      };
    }
    KernelContext kctx{engine, def};
    for (int t : n.inputs) {
      kctx.inputs.push_back(types_[t]);
      kctx.input_descs.push_back(buffers_[tensor_buffer_[t]].desc);
    }
    for (int t : n.outputs) kctx.outputs.push_back(types_[t]);
    kctx.threads = threads_;
    kctx.optimize = optimize;
    if (affine != affine_of.end()) kctx.channel_affine = &affine->second;
    const auto fused = activation_of.find(static_cast<int>(i));
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
    Step step;
    step.node = static_cast<int>(i);
    step.name = def.name;
    step.kernel = std::move(built.kernel);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const int t = n.inputs[k];
      int src = tensor_buffer_[t];
      const dnnl::memory::desc& stored = buffers_[src].desc;
      if (built.src_descs[k] != stored) {
        // The kernel asked for this input in another layout: a reorder step of its own before
        // it, so the stored copy can die (and its bytes be reused) before the kernel runs.
        const bool plain = stored == onednn::plain_desc(types_[t]);
        const dnnl::memory::desc from = plain ? plain_like(types_[t]) : stored;
        Step to_layout;
        to_layout.name = def.name + "/input_layout";
        ReorderStep reorder = make_reorder_step(from, built.src_descs[k], engine);
        to_layout.scratchpad = new_scratchpad(reorder.scratchpad_bytes);
        to_layout.kernel = reorder.kernel;
        to_layout.srcs = {src};
        src = new_buffer(built.src_descs[k]);
        to_layout.dsts = {src};
        to_layout.src_masks = {-1};
        to_layout.dst_masks = {-1};
        steps_.push_back(std::move(to_layout));
        step_flops_.push_back(0);
      }
      step.srcs.push_back(src);
      step.src_masks.push_back(mask_buffer_[t]);
    }
    for (const auto& d : built.temp_descs) step.temps.push_back(new_buffer(d));
    step.scratchpad = new_scratchpad(built.scratchpad_bytes);
    std::vector<Step> after;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      int t = n.outputs[k];
      dnnl::memory::desc plain = onednn::plain_desc(types_[t]);
      int b = new_buffer(built.dst_descs[k]);
      step.dsts.push_back(b);
      if (built.dst_descs[k] != plain && !(optimize && stays_blocked(t))) {
        // The kernel writes another layout: convert to plain for the consumers.
        int pb = new_buffer(plain);
        Step conv;
        conv.name = def.name + "/to_plain";
        ReorderStep reorder = make_reorder_step(built.dst_descs[k], plain_like(types_[t]), engine);
        conv.scratchpad = new_scratchpad(reorder.scratchpad_bytes);
        conv.kernel = reorder.kernel;
        conv.srcs = {b};
        conv.dsts = {pb};
        if (!holds_folded) conv.out_tensors = {t};
        after.push_back(std::move(conv));
        tensor_buffer_[t] = pb;
      } else {
        tensor_buffer_[t] = b;
        if (!holds_folded) step.out_tensors.push_back(t);
      }
      // Masks: produced here, or passed on from the first masked input.
      if (types_[t].masked) {
        if (n.op->produces_mask()) {
          mask_buffer_[t] = new_buffer(mask_buffer_desc(types_[t]));
          step.dst_masks.push_back(mask_buffer_[t]);
        } else {
          for (int in : n.inputs)
            if (mask_buffer_[in] >= 0) {
              mask_buffer_[t] = mask_buffer_[in];
              break;
            }
          step.dst_masks.push_back(-1);
        }
      } else {
        step.dst_masks.push_back(-1);
      }
    }
    steps_.push_back(std::move(step));
    step_flops_.push_back(graph.node_stats(i, types_).flops *
                          static_cast<double>(types_[n.outputs[0]].shape[0]));
    for (auto& s : after) {
      steps_.push_back(std::move(s));
      step_flops_.push_back(0);
    }
  }
  // Steps without a scratchpad share a 1-byte one (primitives with none never touch it).
  no_scratchpad_buffer_ = new_scratchpad(1);
  buffers_[no_scratchpad_buffer_].first = 0;
  buffers_[no_scratchpad_buffer_].last = static_cast<int>(steps_.size());
  for (Step& st : steps_)
    if (st.scratchpad < 0) st.scratchpad = no_scratchpad_buffer_;
  plan_memory();
#if defined(__GLIBC__)
  // Building the kernels freed megabytes of temporaries (weight reorders, oneDNN's kernel
  // generation) in the middle of the heap, where glibc keeps them resident: hand them back.
  malloc_trim(0);
#endif
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
  // Greedy by size: the largest buffers first, each at the lowest offset that does not overlap a
  // placed buffer whose lifetime overlaps.
  std::vector<int> order;
  for (size_t b = 0; b < buffers_.size(); ++b)
    if (buffers_[b].input < 0 && buffers_[b].alias < 0 && buffers_[b].first >= 0)
      order.push_back(static_cast<int>(b));
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return buffers_[a].bytes > buffers_[b].bytes; });
  std::vector<int> placed;
  arena_bytes_ = 0;
  for (int b : order) {
    Buffer& buf = buffers_[b];
    std::vector<std::pair<size_t, size_t>> busy;
    for (int p : placed) {
      const Buffer& o = buffers_[p];
      if (o.first <= buf.last && buf.first <= o.last)
        busy.emplace_back(o.offset, o.offset + align_up(o.bytes));
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (offset + align_up(buf.bytes) <= lo) break;
      offset = std::max(offset, hi);
    }
    buf.offset = offset;
    arena_bytes_ = std::max(arena_bytes_, offset + align_up(buf.bytes));
    placed.push_back(b);
  }
  for (auto& buf : buffers_)
    if (buf.alias >= 0) buf.offset = buffers_[buf.alias].offset;
}

double Plan::flops() const {
  double total = 0;
  for (double f : step_flops_) total += f;
  return total;
}

size_t Plan::unplanned_bytes() const {
  size_t total = 0;
  for (const auto& b : buffers_)
    if (b.input < 0 && b.alias < 0) total += align_up(b.bytes);
  return total;
}

std::unique_ptr<Plan::ExecState> Plan::make_state() const {
  auto state = std::make_unique<ExecState>();
  const dnnl::engine& engine = onednn::cpu_engine();
  state->stream = dnnl::stream(engine);
  size_t bytes = std::max(arena_bytes_, kAlign);
  void* p = ::operator new[](bytes, std::align_val_t(kAlign));
  std::memset(p, 0, bytes);
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
    state->bindings.push_back(steps_[s].kernel->bind(buffers));
  }
  return state;
}

std::map<std::string, Tensor> Plan::run(const std::vector<const Tensor*>& inputs,
                                        const RunOptions& options) const {
  std::unique_ptr<ExecState> state;
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_.empty()) {
      state = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  if (!state) state = make_state();
  struct Return {
    const Plan* plan;
    std::unique_ptr<ExecState>& state;
    ~Return() {
      std::lock_guard<std::mutex> lock(plan->pool_mutex_);
      plan->pool_.push_back(std::move(state));
    }
  } give_back{this, state};

  omp_set_num_threads(threads_);
  for (size_t i = 0; i < buffers_.size(); ++i) {
    const int input = buffers_[base_of(static_cast<int>(i))].input;
    if (input >= 0) state->memories[i].set_data_handle(const_cast<void*>(inputs[input]->raw()));
  }

  auto copy_out = [&](int tensor) {
    const TensorType& type = types_[tensor];
    Tensor out(type.dtype, type.shape);
    const dnnl::memory& mem = state->memories[tensor_buffer_[tensor]];
    const dnnl::memory::desc desc = mem.get_desc();
    if (desc == onednn::plain_desc(type)) {
      std::memcpy(out.mutable_data<void>(), mem.get_data_handle(), out.bytes());
    } else {  // a blocked intermediate (--dump-intermediates): reorder it to plain
      dnnl::memory plain(plain_like(type), mem.get_engine(), out.mutable_data<void>());
      onednn::reorder_now(mem, plain, state->stream);
    }
    return out;
  };
  const auto& tensors = graph_.tensors();
  using clock = std::chrono::steady_clock;
  const auto run_start = clock::now();
  if (options.profile) options.profile->clear();
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& st = steps_[s];
    auto& a = state->args[s];
    ExecContext ctx{state->stream,
                    a.srcs,
                    a.dsts,
                    a.temps,
                    a.src_masks,
                    a.dst_masks,
                    state->memories[st.scratchpad],
                    threads_,
                    state->bindings[s].get()};
    const auto step_start = clock::now();
    if (options.observer) options.observer->before_step(s);
    st.kernel->execute(ctx);
    if (options.observer) options.observer->after_step(s);
    if (options.profile) {
      state->stream.wait();
      const auto step_end = clock::now();
      StepTiming t;
      t.name = st.name;
      t.impl = st.kernel->impl_info();
      t.start_ms = std::chrono::duration<double, std::milli>(step_start - run_start).count();
      t.duration_ms = std::chrono::duration<double, std::milli>(step_end - step_start).count();
      if (st.node >= 0) {
        const CompiledNode& n = graph_.nodes()[st.node];
        t.op = n.def->op;
        t.branch = n.branch;
        t.flops = step_flops_[s];
      } else {
        t.op = "reorder";
      }
      options.profile->push_back(std::move(t));
    }
    if (options.intermediates) {
      state->stream.wait();
      for (int t : st.out_tensors) (*options.intermediates)[tensors[t].name] = copy_out(t);
    }
  }
  state->stream.wait();
  std::map<std::string, Tensor> outputs;
  const auto& names = graph_.def().outputs;
  for (size_t k = 0; k < names.size(); ++k) {
    int t = graph_.output_tensors()[k];
    if (tensors[t].producer < 0) {
      const Tensor* in = inputs[tensors[t].input_index];
      Tensor copy(in->dtype(), in->shape());
      std::memcpy(copy.mutable_data<void>(), in->raw(), in->bytes());
      outputs[names[k]] = copy;
    } else {
      outputs[names[k]] = copy_out(t);
    }
  }
  return outputs;
}

}  // namespace fg
