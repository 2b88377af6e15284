// Runs the single node of a YAML graph directly through Op::infer / compile / Kernel::execute,
// with hand-made input masks (no mask-producing op needed). Used by the concatenate, merge and
// global pooling tests to check the masks these ops produce or consume. Inputs and outputs are
// plain (ops that ask for another layout are not run here).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/tensor.hpp"
#include "layers/registry.hpp"

namespace fg::test {

struct DirectResult {
  TensorType type;  // what infer said (shape, masked)
  Tensor out;
  std::vector<uint8_t> mask;  // [batch, steps] when type.masked
};

// masks[i] empty = input i has no mask; else [batch, shape[1]] of 0/1.
inline DirectResult run_direct(const std::string& yaml, const std::vector<Tensor>& ins,
                               const std::vector<std::vector<uint8_t>>& masks) {
  auto def = load_graph_string(yaml, "t.yaml");
  auto graph = compile_graph(def, builtin_ops());
  const CompiledNode& node = graph.nodes().at(0);
  std::vector<TensorType> types;
  std::vector<std::string> names;
  for (size_t i = 0; i < ins.size(); ++i) {
    types.push_back({ins[i].shape(), ins[i].dtype(), !masks[i].empty()});
    names.push_back(node.def->inputs[i]);
  }
  InferContext ictx(*node.def, types, names);
  std::vector<TensorType> outs = node.op->infer(ictx);
  const dnnl::engine& eng = onednn::cpu_engine();
  KernelContext kctx{eng, *node.def};
  kctx.inputs = types;
  kctx.outputs = outs;
  for (const auto& t : types) kctx.input_descs.push_back(onednn::plain_desc(t));
  KernelBuild build = node.op->compile(kctx);
  DirectResult r{outs[0], Tensor(outs[0].dtype, outs[0].shape), {}};
  std::vector<dnnl::memory> srcs, dsts, temps;
  for (size_t i = 0; i < ins.size(); ++i)
    srcs.emplace_back(build.src_descs[i], eng, const_cast<void*>(ins[i].raw()));
  dsts.emplace_back(build.dst_descs[0], eng, r.out.mutable_data<float>());
  for (const auto& d : build.temp_descs) temps.emplace_back(d, eng);
  std::vector<const uint8_t*> src_masks;
  for (const auto& m : masks) src_masks.push_back(m.empty() ? nullptr : m.data());
  if (outs[0].masked) r.mask.assign(static_cast<size_t>(outs[0].shape[0] * outs[0].shape[1]), 7);
  std::vector<uint8_t*> dst_masks{outs[0].masked ? r.mask.data() : nullptr};
  dnnl::stream stream(eng);
  dnnl::memory scratchpad(
      {{std::max<dnnl::memory::dim>(1, static_cast<dnnl::memory::dim>(build.scratchpad_bytes))},
       dnnl::memory::data_type::u8,
       dnnl::memory::format_tag::a},
      eng);
  auto binding = build.kernel->bind(StepBuffers{srcs, dsts, temps, scratchpad});
  ExecContext ectx{stream, srcs, dsts, temps, src_masks, dst_masks, scratchpad, 1, binding.get()};
  build.kernel->execute(ectx);
  stream.wait();
  return r;
}

}  // namespace fg::test
