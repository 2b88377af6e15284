// A kernel made of a fixed list of oneDNN primitives (steps), each with its arguments taken
// from the node's inputs, output, temporaries or constant memories (weights), optionally seen
// through another desc of the same bytes (a view, e.g. [B, C] as {B, 1, 1, C} for broadcasting).
// Used by the fusion ops gated, film and upsampling2d.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"

namespace fg::layers {

struct StepArg {
  enum class Kind { src, dst, temp, fixed };
  Kind kind = Kind::fixed;
  int index = 0;
  dnnl::memory fixed;       // for Kind::fixed
  dnnl::memory::desc view;  // zero desc = use the memory's own desc

  static StepArg src(int i, dnnl::memory::desc view = {}) { return {Kind::src, i, {}, view}; }
  static StepArg dst(int i, dnnl::memory::desc view = {}) { return {Kind::dst, i, {}, view}; }
  static StepArg temp(int i, dnnl::memory::desc view = {}) { return {Kind::temp, i, {}, view}; }
  static StepArg constant(dnnl::memory m) { return {Kind::fixed, 0, std::move(m), {}}; }
};

struct Step {
  dnnl::primitive prim;
  std::vector<std::pair<int, StepArg>> args;  // DNNL_ARG_* -> where it comes from
};

class StepKernel final : public Kernel {
 public:
  StepKernel(std::vector<Step> steps, std::string impl)
      : steps_(std::move(steps)), impl_(std::move(impl)) {}

  void execute(ExecContext& ctx) const override {
    for (const Step& s : steps_) {
      std::unordered_map<int, dnnl::memory> args;
      for (const auto& [key, a] : s.args) args.emplace(key, resolve(ctx, a));
      execute_primitive(s.prim, ctx, std::move(args));
    }
  }
  std::string impl_info() const override { return impl_; }

 private:
  static dnnl::memory resolve(ExecContext& ctx, const StepArg& a) {
    dnnl::memory m;
    switch (a.kind) {
      case StepArg::Kind::src:
        m = ctx.srcs[a.index];
        break;
      case StepArg::Kind::dst:
        m = ctx.dsts[a.index];
        break;
      case StepArg::Kind::temp:
        m = ctx.temps[a.index];
        break;
      case StepArg::Kind::fixed:
        return a.fixed;
    }
    if (a.view.data.ndims == 0) return m;
    return onednn::view_as(m, a.view);
  }

  std::vector<Step> steps_;
  std::string impl_;
};

// Collects the distinct implementation names of a kernel's primitives, e.g.
// "jit:avx2 + simple:any".
inline void add_impl(std::string& impl, const dnnl::primitive_desc_base& pd) {
  const std::string name = onednn::impl_name(pd);
  if (impl.find(name) != std::string::npos) return;
  impl += impl.empty() ? name : " + " + name;
}

}  // namespace fg::layers
