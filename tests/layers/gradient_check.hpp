// Gradient checks for the ops' training kernels (kernels/training_kernel.hpp).
//
// run_training_node runs the first node of a one-node YAML graph through Op::compile_training:
// the training forward, then the backward with given d loss / d outputs, over plain buffers.
//
// check_gradients compares, for L = sum_k <r_k, output_k> with random r_k:
//   - the training forward's outputs against a naive double-precision forward, and
//   - the backward's d L / d input and d L / d weight against central finite differences of
//     that same naive forward (in double, so the differences are exact to ~1e-9).
// Nothing in the expected values comes from the kernel under test. numeric_gradient is the
// finite-difference core, tested on its own on a function with a known gradient.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/tensor.hpp"
#include "kernels/training_kernel.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace fg::test {

struct TrainingNodeCase {
  std::string yaml;                         // a graph whose first node is the one checked
  std::vector<Tensor> inputs;               // that node's inputs, full shapes
  std::map<std::string, Tensor> weights;    // by param name ("kernel"), Keras layouts
  std::vector<std::vector<uint8_t>> masks;  // per input: empty, or [batch, steps] of 0/1
  bool frozen = false;
  bool output_logits = false;
  uint64_t seed = 0;
  int64_t step = 0;
  // Per input; empty = every float input.
  std::vector<bool> needs_input_gradient;
};

struct TrainingNodeResult {
  std::vector<TensorType> output_types;
  std::vector<std::string> weight_names;  // weights() order
  std::vector<Tensor> outputs, saved, diff_inputs, diff_weights;
  std::map<std::string, Tensor> weights_after;  // after the forward (moving statistics)
  std::vector<std::vector<uint8_t>> output_masks;
};

namespace detail {

inline dnnl::memory wrap(const dnnl::memory::desc& d, const dnnl::engine& eng, void* p) {
  return dnnl::memory(d, eng, p);
}

inline dnnl::memory scratch_memory(size_t bytes, const dnnl::engine& eng) {
  return dnnl::memory({{std::max<dnnl::memory::dim>(1, static_cast<dnnl::memory::dim>(bytes))},
                       dnnl::memory::data_type::u8,
                       dnnl::memory::format_tag::a},
                      eng);
}

inline void run_kernel(const KernelBuild& build, std::vector<dnnl::memory>& srcs,
                       std::vector<dnnl::memory>& dsts,
                       const std::vector<const uint8_t*>& src_masks,
                       const std::vector<uint8_t*>& dst_masks, int64_t step) {
  const dnnl::engine& eng = onednn::cpu_engine();
  std::vector<dnnl::memory> temps;
  for (const auto& d : build.temp_descs) {
    temps.emplace_back(d, eng);
    // NaN in temporaries: a kernel reading one before writing it shows.
    std::fill_n(static_cast<float*>(temps.back().get_data_handle()), d.get_size() / sizeof(float),
                std::nanf(""));
  }
  dnnl::memory scratchpad = scratch_memory(build.scratchpad_bytes, eng);
  dnnl::stream stream(eng);
  auto binding = build.kernel->bind(StepBuffers{srcs, dsts, temps, scratchpad});
  ExecContext ctx{stream, srcs, dsts, temps, src_masks, dst_masks, scratchpad, 1, binding.get()};
  ctx.step = step;
  build.kernel->execute(ctx);
  stream.wait();
}

inline Tensor nan_tensor(const Dims& shape) {
  Tensor t(DType::f32, shape);
  std::fill_n(t.mutable_data<float>(), t.size(), std::nanf(""));
  return t;
}

inline Tensor zero_tensor(const Dims& shape) {
  Tensor t(DType::f32, shape);
  std::fill_n(t.mutable_data<float>(), t.size(), 0.0f);
  return t;
}

inline Dims desc_dims(const dnnl::memory::desc& d) {
  Dims out;
  for (auto v : d.dims()) out.push_back(v);
  return out;
}

}  // namespace detail

inline TrainingNodeResult run_training_node(const TrainingNodeCase& c,
                                            const std::vector<Tensor>& diff_outputs) {
  auto def = load_graph_string(c.yaml, "t.yaml");
  auto graph = compile_graph(def, builtin_ops());
  const CompiledNode& node = graph.nodes().at(0);
  REQUIRE_MESSAGE(node.op->has_gradient(), "op '" << node.def->op << "' has no gradient");
  std::vector<TensorType> types;
  std::vector<std::string> names;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const bool masked = i < c.masks.size() && !c.masks[i].empty();
    types.push_back({c.inputs[i].shape(), c.inputs[i].dtype(), masked});
    names.push_back(node.def->inputs.at(i));
  }
  InferContext ictx(*node.def, types, names);
  TrainingNodeResult r;
  r.output_types = node.op->infer(ictx);
  std::vector<WeightSpec> specs = node.op->weights(ictx);

  const dnnl::engine& eng = onednn::cpu_engine();
  TrainingKernelContext kctx{{eng, *node.def}};
  kctx.inputs = types;
  kctx.outputs = r.output_types;
  for (const auto& t : types) kctx.input_descs.push_back(onednn::plain_desc(t));
  kctx.optimize = false;
  for (const auto& s : specs) {
    kctx.weight_types.push_back({Dims(s.shape), DType::f32, false});
    r.weight_names.push_back(s.param);
  }
  kctx.needs_input_gradient = c.needs_input_gradient;
  if (kctx.needs_input_gradient.empty())
    for (const auto& t : types) kctx.needs_input_gradient.push_back(t.dtype == DType::f32);
  kctx.frozen = c.frozen;
  kctx.output_logits = c.output_logits;
  kctx.seed = c.seed;
  TrainingBuild build;
  node.op->compile_training(kctx, build);
  const BackwardArgs a = backward_args(kctx, build.saved_descs.size());
  REQUIRE(build.forward.src_descs.size() == static_cast<size_t>(a.inputs + a.weights));
  REQUIRE(build.forward.dst_descs.size() == static_cast<size_t>(a.outputs + a.saved));
  REQUIRE(build.backward.src_descs.size() == static_cast<size_t>(a.srcs()));
  REQUIRE(build.backward.dst_descs.size() == static_cast<size_t>(a.dsts()));

  // Weights are copied (the forward may update moving statistics in place).
  for (const auto& s : specs) {
    auto it = c.weights.find(s.param);
    REQUIRE_MESSAGE(it != c.weights.end(), "the case has no weight '" << s.param << "'");
    Tensor w(DType::f32, it->second.shape());
    std::copy_n(it->second.data<float>(), w.size(), w.mutable_data<float>());
    r.weights_after[s.param] = w;
  }
  for (const auto& t : r.output_types) r.outputs.push_back(detail::nan_tensor(t.shape));
  for (const auto& d : build.saved_descs) {
    // Raw bytes (any dtype the kernel chose), as floats rounded up; NaN patterns to start.
    Tensor t(DType::f32, Dims{static_cast<int64_t>(std::max<size_t>(1, (d.get_size() + 3) / 4))});
    std::fill_n(reinterpret_cast<uint8_t*>(t.mutable_data<float>()), t.bytes(), uint8_t{0xFF});
    r.saved.push_back(t);
  }
  std::vector<const uint8_t*> src_masks;
  for (size_t i = 0; i < c.inputs.size(); ++i)
    src_masks.push_back(i < c.masks.size() && !c.masks[i].empty() ? c.masks[i].data() : nullptr);
  std::vector<uint8_t*> dst_masks;
  r.output_masks.resize(r.output_types.size());
  for (size_t i = 0; i < r.output_types.size(); ++i) {
    const auto& t = r.output_types[i];
    if (t.masked && node.op->produces_mask()) {
      r.output_masks[i].assign(static_cast<size_t>(t.shape[0] * t.shape[1]), 7);
      dst_masks.push_back(r.output_masks[i].data());
    } else {
      dst_masks.push_back(nullptr);
    }
  }

  std::vector<dnnl::memory> fsrcs, fdsts;
  for (int i = 0; i < a.inputs; ++i)
    fsrcs.push_back(
        detail::wrap(build.forward.src_descs[i], eng, const_cast<void*>(c.inputs[i].raw())));
  for (int i = 0; i < a.weights; ++i)
    fsrcs.push_back(detail::wrap(build.forward.src_descs[a.inputs + i], eng,
                                 r.weights_after[r.weight_names[i]].mutable_data<float>()));
  for (int i = 0; i < a.outputs; ++i)
    fdsts.push_back(
        detail::wrap(build.forward.dst_descs[i], eng, r.outputs[i].mutable_data<float>()));
  for (int i = 0; i < a.saved; ++i)
    fdsts.push_back(detail::wrap(build.forward.dst_descs[a.outputs + i], eng,
                                 r.saved[i].mutable_data<float>()));
  detail::run_kernel(build.forward, fsrcs, fdsts, src_masks, dst_masks, c.step);

  if (diff_outputs.empty()) return r;
  REQUIRE(diff_outputs.size() == r.output_types.size());
  std::vector<const uint8_t*> out_masks;
  for (auto* m : dst_masks) out_masks.push_back(m);
  std::vector<dnnl::memory> bsrcs = fsrcs, bdsts;
  for (auto& m : fdsts) bsrcs.push_back(m);
  for (int i = 0; i < a.outputs; ++i)
    bsrcs.push_back(detail::wrap(build.backward.src_descs[a.diff_output(i)], eng,
                                 const_cast<void*>(diff_outputs[i].raw())));
  for (int i = 0; i < a.inputs; ++i) {
    // Inputs that need no gradient keep their zeros: the kernel must not write them.
    r.diff_inputs.push_back(kctx.needs_input_gradient[i] ? detail::nan_tensor(types[i].shape)
                                                         : detail::zero_tensor(types[i].shape));
    bdsts.push_back(detail::wrap(build.backward.dst_descs[a.diff_input(i)], eng,
                                 r.diff_inputs.back().mutable_data<float>()));
  }
  for (int i = 0; i < a.weights; ++i) {
    const Dims& shape = kctx.weight_types[i].shape;
    r.diff_weights.push_back(c.frozen ? detail::zero_tensor(shape) : detail::nan_tensor(shape));
    bdsts.push_back(detail::wrap(build.backward.dst_descs[a.diff_weight(i)], eng,
                                 r.diff_weights.back().mutable_data<float>()));
  }
  detail::run_kernel(build.backward, bsrcs, bdsts, src_masks, {}, c.step);
  return r;
}

// Central differences of a scalar function of one flat vector at `x`, for the entries in
// `indices` (all when empty). Exact for quadratics up to rounding.
inline std::vector<double> numeric_gradient(
    const std::function<double(const std::vector<double>&)>& f, std::vector<double> x,
    const std::vector<size_t>& indices, double eps = 1e-5) {
  std::vector<double> g(x.size(), 0.0);
  auto one = [&](size_t i) {
    const double keep = x[i];
    x[i] = keep + eps;
    const double up = f(x);
    x[i] = keep - eps;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * eps);
  };
  if (indices.empty())
    for (size_t i = 0; i < x.size(); ++i) one(i);
  else
    for (size_t i : indices) one(i);
  return g;
}

// A naive forward in double: the node's inputs and weights (weights() order), each flattened
// row major, to its outputs flattened. Int inputs arrive as their values in double.
using NaiveForward = std::function<std::vector<std::vector<double>>(
    const std::vector<std::vector<double>>& inputs,
    const std::vector<std::vector<double>>& weights)>;

struct GradientTolerance {
  double forward = 1e-4;     // |got - want| <= forward * (1 + |want|)
  double gradient = 2e-3;    // |got - want| <= gradient * (scale + |want|)
  size_t max_checked = 300;  // entries per tensor checked against finite differences
  double eps = 1e-5;
};

namespace detail {

inline std::vector<size_t> sample_indices(size_t n, size_t max, uint64_t seed) {
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  if (n <= max) return all;
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(max);
  std::sort(all.begin(), all.end());
  return all;
}

inline void compare_gradient(const std::string& what, const Tensor& got,
                             const std::vector<double>& want, const std::vector<size_t>& indices,
                             double tol) {
  double scale = 0;
  for (size_t i : indices) scale = std::max(scale, std::abs(want[i]));
  scale = std::max(scale, 1e-3);
  const float* g = got.data<float>();
  size_t bad = 0;
  for (size_t i : indices) {
    const double err = std::abs(static_cast<double>(g[i]) - want[i]);
    if (!(err <= tol * (scale + std::abs(want[i])))) {
      if (bad++ < 5)
        FAIL_CHECK(what << "[" << i << "]: backward " << g[i] << ", finite differences "
                        << want[i]);
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << indices.size() << " entries differ");
}

}  // namespace detail

// Checks the node's training forward against `naive` and its gradients against finite
// differences of `naive` (see the top of this file). Returns the run for further checks.
inline TrainingNodeResult check_gradients(const TrainingNodeCase& c, const NaiveForward& naive,
                                          const GradientTolerance& tol = {}) {
  // Random weights r_k of the scalar L = sum_k <r_k, out_k>.
  TrainingNodeResult first = run_training_node(c, {});
  std::vector<Tensor> r;
  std::vector<std::vector<double>> rd;
  for (size_t k = 0; k < first.output_types.size(); ++k) {
    r.push_back(random_tensor(first.output_types[k].shape, 900 + k));
    rd.push_back(to_doubles(r.back()));
  }
  TrainingNodeResult got = run_training_node(c, r);

  std::vector<std::vector<double>> xs, ws;
  for (const auto& t : c.inputs) xs.push_back(to_doubles(t));
  for (const auto& name : got.weight_names) ws.push_back(to_doubles(c.weights.at(name)));
  const auto want_out = naive(xs, ws);
  REQUIRE(want_out.size() == got.outputs.size());
  for (size_t k = 0; k < want_out.size(); ++k) {
    INFO("output " << k);
    check_close(got.outputs[k], want_out[k], tol.forward, tol.forward);
  }
  auto loss = [&](const std::vector<std::vector<double>>& x,
                  const std::vector<std::vector<double>>& w) {
    const auto out = naive(x, w);
    double s = 0;
    for (size_t k = 0; k < out.size(); ++k)
      for (size_t i = 0; i < out[k].size(); ++i) s += rd[k][i] * out[k][i];
    return s;
  };
  for (size_t i = 0; i < xs.size(); ++i) {
    if (c.inputs[i].dtype() != DType::f32) continue;
    const bool needed = c.needs_input_gradient.empty() || c.needs_input_gradient[i];
    if (!needed) continue;
    auto idx = detail::sample_indices(xs[i].size(), tol.max_checked, 17 + i);
    auto g = numeric_gradient(
        [&](const std::vector<double>& v) {
          auto x = xs;
          x[i] = v;
          return loss(x, ws);
        },
        xs[i], idx, tol.eps);
    detail::compare_gradient("d input " + std::to_string(i), got.diff_inputs[i], g, idx,
                             tol.gradient);
  }
  if (c.frozen) return got;
  for (size_t j = 0; j < ws.size(); ++j) {
    auto idx = detail::sample_indices(ws[j].size(), tol.max_checked, 31 + j);
    auto g = numeric_gradient(
        [&](const std::vector<double>& v) {
          auto w = ws;
          w[j] = v;
          return loss(xs, w);
        },
        ws[j], idx, tol.eps);
    detail::compare_gradient("d " + got.weight_names[j], got.diff_weights[j], g, idx, tol.gradient);
  }
  return got;
}

}  // namespace fg::test
