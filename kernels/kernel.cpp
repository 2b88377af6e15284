#include "kernels/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "kernels/onednn/onednn.hpp"
#include "kernels/weight_cache.hpp"

namespace fg {

void KernelBuild::add_scratchpad(const dnnl::primitive_desc_base& pd) {
  scratchpad_bytes = std::max(scratchpad_bytes, pd.scratchpad_desc().get_size());
}

int KernelBuild::add_temp(const dnnl::memory::desc& desc) {
  temp_descs.push_back(desc);
  return static_cast<int>(temp_descs.size() - 1);
}

KernelBuild KernelContext::start_build() const {
  KernelBuild build;
  build.src_descs = input_descs;
  for (const TensorType& t : outputs) build.dst_descs.push_back(onednn::plain_desc(t));
  return build;
}

const Tensor& KernelContext::weight(const std::string& param) const {
  if (weight_lookup == nullptr) throw error("internal: no weights bound for compile");
  return (*weight_lookup)(param);
}

dnnl::memory KernelContext::weight_memory(const std::string& param,
                                          const dnnl::memory::desc& user_desc,
                                          const dnnl::memory::desc& want_desc) const {
  const Tensor& host = weight(param);
  if (user_desc.get_size() != host.bytes())
    throw error(fmt::format("internal: weight '{}' has {} bytes but its oneDNN desc wants {}",
                            param, host.bytes(), user_desc.get_size()));
  // The primitive takes the Keras layout as it is: use the loaded bytes (owned by the weight
  // store), no copy.
  if (want_desc == user_desc) return dnnl::memory(user_desc, engine, const_cast<void*>(host.raw()));
  return constant(param, want_desc, [&]() {
    dnnl::memory user(user_desc, engine, const_cast<void*>(host.raw()));
    dnnl::memory dst(want_desc, engine);
    dnnl::stream stream(engine);
    onednn::reorder_now(user, dst, stream);
    return dst;
  });
}

dnnl::memory KernelContext::constant(const std::string& key, const dnnl::memory::desc& want_desc,
                                     const std::function<dnnl::memory()>& make) const {
  if (weight_cache == nullptr) return make();
  return weight_cache->get_or_make(node.name + "." + key, want_desc, make);
}

Error KernelContext::error(const std::string& message) const {
  Error e(message);
  e.at(node.loc).node(node.name, node.op);
  return e;
}

std::unique_ptr<KernelBinding> Kernel::bind(const StepBuffers&) const {
  return nullptr;
}

CallArg CallArg::src(int i, dnnl::memory::desc view, size_t offset) {
  return {Source::src, i, {}, std::move(view), offset};
}
CallArg CallArg::dst(int i, dnnl::memory::desc view, size_t offset) {
  return {Source::dst, i, {}, std::move(view), offset};
}
CallArg CallArg::temp(int i, dnnl::memory::desc view, size_t offset) {
  return {Source::temp, i, {}, std::move(view), offset};
}
CallArg CallArg::constant(dnnl::memory m) {
  return {Source::constant, 0, std::move(m), {}, 0};
}

void PrimitiveSequence::add(const dnnl::primitive_desc_base& pd,
                            std::vector<std::pair<int, CallArg>> args, KernelBuild& build) {
  build.add_scratchpad(pd);
  add_impl(impl_, pd);
  add(dnnl::primitive(pd.get()), std::move(args));
}

void PrimitiveSequence::add(dnnl::primitive prim, std::vector<std::pair<int, CallArg>> args) {
  calls_.push_back({std::move(prim), std::move(args)});
}

namespace {
const dnnl::memory& buffer_of(const StepBuffers& buffers, const CallArg& arg) {
  const std::vector<dnnl::memory>* list = &buffers.temps;
  if (arg.source == CallArg::Source::src) list = &buffers.srcs;
  if (arg.source == CallArg::Source::dst) list = &buffers.dsts;
  if (arg.index < 0 || static_cast<size_t>(arg.index) >= list->size())
    throw Error(fmt::format("internal: a primitive call reads buffer {} of a step with {}",
                            arg.index, list->size()));
  return (*list)[static_cast<size_t>(arg.index)];
}

void* at_offset(const dnnl::memory& base, size_t offset) {
  return static_cast<char*>(base.get_data_handle()) + offset;
}
}  // namespace

std::unique_ptr<PrimitiveSequence::Binding> PrimitiveSequence::bind(
    const StepBuffers& buffers) const {
  auto binding = std::make_unique<Binding>();
  binding->calls.reserve(calls_.size());
  for (const PrimitiveCall& call : calls_) {
    Binding::BoundCall bound;
    for (const auto& [key, arg] : call.args) {
      dnnl::memory mem;
      if (arg.source == CallArg::Source::constant) {
        mem = arg.constant_memory;
      } else {
        const dnnl::memory& base = buffer_of(buffers, arg);
        if (arg.view.data.ndims == 0 && arg.offset == 0) {
          mem = base;
        } else {
          const dnnl::memory::desc view = arg.view.data.ndims == 0 ? base.get_desc() : arg.view;
          mem = dnnl::memory(view, base.get_engine(), at_offset(base, arg.offset));
          if (arg.source == CallArg::Source::src)
            bound.src_views.push_back({mem, base, arg.offset});
        }
      }
      binding->owned.push_back(mem);
      bound.args.push_back({key, mem.get()});
    }
    binding->owned.push_back(buffers.scratchpad);
    bound.args.push_back({DNNL_ARG_SCRATCHPAD, buffers.scratchpad.get()});
    binding->calls.push_back(std::move(bound));
  }
  return binding;
}

void PrimitiveSequence::run(ExecContext& ctx, const Binding& binding, size_t first,
                            size_t last) const {
  last = std::min(last, calls_.size());
  for (size_t i = first; i < last; ++i) {
    const Binding::BoundCall& bound = binding.calls[i];
    for (const Binding::View& v : bound.src_views) {
      void* want = at_offset(v.base, v.offset);
      if (v.memory.get_data_handle() != want) v.memory.set_data_handle(want);
    }
    // The C API takes the prepared argument array as it is (dnnl::primitive::execute would
    // build a std::vector from a std::unordered_map on every call).
    dnnl::error::wrap_c_api(
        dnnl_primitive_execute(calls_[i].prim.get(), ctx.stream.get(),
                               static_cast<int>(bound.args.size()), bound.args.data()),
        "could not execute a primitive");
  }
}

std::unique_ptr<KernelBinding> PrimitiveSequenceKernel::bind(const StepBuffers& buffers) const {
  return calls_.bind(buffers);
}

void PrimitiveSequenceKernel::execute(ExecContext& ctx) const {
  if (calls_.empty()) return;
  calls_.run(ctx, static_cast<const PrimitiveSequence::Binding&>(*ctx.binding));
}

void add_impl(std::string& impl, const dnnl::primitive_desc_base& pd) {
  const std::string name = onednn::impl_name(pd);
  if (impl.find(name) != std::string::npos) return;
  impl += impl.empty() ? name : " + " + name;
}

}  // namespace fg
