#include "kernels/kernel.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "kernels/onednn/onednn.hpp"
#include "kernels/weight_cache.hpp"

namespace fg {

const Tensor& KernelContext::weight(const std::string& param) const {
  if (weight_lookup == nullptr) throw error("internal: no weights bound for compile");
  return (*weight_lookup)(param);
}

dnnl::memory KernelContext::weight_memory(const std::string& param,
                                          const dnnl::memory::desc& user_desc,
                                          const dnnl::memory::desc& want_desc) {
  const Tensor& host = weight(param);
  if (user_desc.get_size() != host.bytes())
    throw error(fmt::format("internal: weight '{}' has {} bytes but its oneDNN desc wants {}",
                            param, host.bytes(), user_desc.get_size()));
  // The primitive takes the Keras layout as it is: use the loaded (memory-mapped) bytes, no copy.
  if (want_desc == user_desc) return dnnl::memory(user_desc, engine, const_cast<void*>(host.raw()));
  return constant(param, want_desc, [&]() {
    dnnl::memory user(user_desc, engine, const_cast<void*>(host.raw()));
    dnnl::memory dst(want_desc, engine);
    dnnl::stream stream(engine);
    onednn::reorder_now(user, dst, stream);
    if (weight_done != nullptr) (*weight_done)(param);
    return dst;
  });
}

dnnl::memory KernelContext::constant(const std::string& key, const dnnl::memory::desc& want_desc,
                                     const std::function<dnnl::memory()>& make) {
  if (weight_cache == nullptr) return make();
  return weight_cache->get_or_make(node.name + "." + key, want_desc, make);
}

Error KernelContext::error(const std::string& message) const {
  Error e(message);
  e.at(node.loc).node(node.name, node.op);
  return e;
}

void KernelContext::add_scratchpad(const dnnl::primitive_desc_base& pd) {
  scratchpad_bytes = std::max(scratchpad_bytes, pd.scratchpad_desc().get_size());
}

void execute_primitive(const dnnl::primitive& prim, ExecContext& ctx,
                       std::unordered_map<int, dnnl::memory> args) {
  args.emplace(DNNL_ARG_SCRATCHPAD, ctx.scratchpad);
  prim.execute(ctx.stream, args);
}

PrimitiveKernel::PrimitiveKernel(dnnl::primitive prim, std::string impl,
                                 std::vector<std::pair<int, dnnl::memory>> fixed_args,
                                 std::vector<int> src_args, std::vector<int> dst_args,
                                 std::vector<dnnl::memory::desc> src_views,
                                 std::vector<dnnl::memory::desc> dst_views)
    : prim_(std::move(prim)),
      impl_(std::move(impl)),
      fixed_args_(std::move(fixed_args)),
      src_args_(std::move(src_args)),
      dst_args_(std::move(dst_args)),
      src_views_(std::move(src_views)),
      dst_views_(std::move(dst_views)) {}

namespace {
dnnl::memory viewed(const dnnl::memory& mem, const std::vector<dnnl::memory::desc>& views,
                    size_t i) {
  if (i >= views.size()) return mem;
  return dnnl::memory(views[i], mem.get_engine(), mem.get_data_handle());
}
}  // namespace

void PrimitiveKernel::execute(ExecContext& ctx) const {
  std::unordered_map<int, dnnl::memory> args;
  for (const auto& [arg, mem] : fixed_args_) args.emplace(arg, mem);
  for (size_t i = 0; i < src_args_.size() && i < ctx.srcs.size(); ++i)
    args.emplace(src_args_[i], viewed(ctx.srcs[i], src_views_, i));
  for (size_t i = 0; i < dst_args_.size() && i < ctx.dsts.size(); ++i)
    args.emplace(dst_args_[i], viewed(ctx.dsts[i], dst_views_, i));
  execute_primitive(prim_, ctx, std::move(args));
}

}  // namespace fg
