// A fusion op defined outside FusionGraph, registered next to the built-ins, and checked against
// a naive computation.
//
//   max_fusion: y = max over m of (x_m @ kernel_m + bias_m)      (element-wise max)
//     inputs   two or more float32 tensors [batch, d_m] (the d_m may differ)
//     units    output width (required, > 0);  use_bias: true (default) / false
//     weights  kernel_<m> [d_m, units] (glorot_uniform), bias_<m> [units] (zeros), m = 0, 1, ...
//     oneDNN   one inner_product_forward per input (weights `any`, reordered once) and a
//              binary_max into the output
//
// Usage: custom_fusion [graph.yaml]   (exit status 0 when the results match, 1 otherwise)
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fusiongraph/extension.hpp>
#include <fusiongraph/fusiongraph.hpp>
#include <iostream>

namespace {

// ---------------------------------------------------------------- the op

class MaxFusion final : public fg::Op {
 public:
  void parse(fg::AttrReader& attrs) override {
    units_ = attrs.get_positive_int("units");  // "units must be positive" points at the value
    if (units_ > 1 << 20)
      throw attrs.error("units", fmt::format("units must be at most {}, got {}", 1 << 20, units_));
    use_bias_ = attrs.get_bool("use_bias", true);
  }

  std::vector<fg::TensorType> infer(const fg::InferContext& ctx) const override {
    ctx.expect_inputs_at_least(2);
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      ctx.expect_dtype(i, fg::DType::f32);
      const fg::TensorType& x = ctx.input(i);
      if (x.rank() != 2)
        throw ctx
            .input_error(i, fmt::format("max_fusion needs [batch, features] inputs, got {}",
                                        fg::format_shape(x.shape)))
            .hint("flatten or pool the branch first");
      if (x.shape[1] == fg::kDynamic)
        throw ctx.input_error(i, "max_fusion needs the feature dimension known");
    }
    return {fg::TensorType{{ctx.input(0).shape[0], units_}, fg::DType::f32, false}};
  }

  std::vector<fg::WeightSpec> weights(const fg::InferContext& ctx) const override {
    std::vector<fg::WeightSpec> specs;
    for (size_t m = 0; m < ctx.num_inputs(); ++m) {
      const fg::Dim in = ctx.input(m).shape[1];
      specs.push_back(
          {fmt::format("kernel_{}", m), {in, units_}, fg::Init::glorot_uniform, in, units_});
      if (use_bias_) specs.push_back({fmt::format("bias_{}", m), {units_}, fg::Init::zeros});
    }
    return specs;
  }

  double flops_per_sample(const fg::InferContext& ctx,
                          const std::vector<fg::TensorType>&) const override {
    double flops = 0;
    for (const auto& x : ctx.inputs()) flops += 2.0 * double(x.shape[1]) * double(units_);
    return flops;
  }

  // The kernel is a list of primitive calls, each argument naming a src / dst / temporary of
  // the step or a constant (weights): the library binds them to each run's buffers once and
  // passes every call the step's scratchpad.
  fg::KernelBuild compile(const fg::KernelContext& ctx) const override {
    namespace on = fg::onednn;
    fg::KernelBuild build = ctx.start_build();  // inputs as stored, output plain
    const fg::Dim batch = ctx.inputs[0].shape[0];
    const dnnl::memory::desc tmp_desc = on::plain_desc(fg::Dims{batch, units_});
    const fg::CallArg tmp = fg::CallArg::temp(build.add_temp(tmp_desc));  // from the run's arena
    const fg::CallArg dst = fg::CallArg::dst(0);
    const dnnl::memory::desc& dst_desc = build.dst_descs[0];
    auto max_pd = on::make_binary_pd(dnnl::algorithm::binary_max, dst_desc, tmp_desc, dst_desc);
    fg::PrimitiveSequence calls;
    for (size_t m = 0; m < ctx.inputs.size(); ++m) {
      const fg::Dim in = ctx.inputs[m].shape[1];
      auto pd = on::make_inner_product_pd(build.src_descs[m], m == 0 ? dst_desc : tmp_desc,
                                          use_bias_, on::make_attr());
      std::vector<std::pair<int, fg::CallArg>> args{
          {DNNL_ARG_SRC, fg::CallArg::src(static_cast<int>(m))},
          {DNNL_ARG_WEIGHTS,
           fg::CallArg::constant(ctx.weight_memory(
               fmt::format("kernel_{}", m), on::dense_kernel_desc(in, units_), pd.weights_desc()))},
          {DNNL_ARG_DST, m == 0 ? dst : tmp}};
      if (use_bias_)
        args.push_back({DNNL_ARG_BIAS, fg::CallArg::constant(ctx.weight_memory(
                                           fmt::format("bias_{}", m),
                                           on::plain_desc(fg::Dims{units_}), pd.bias_desc()))});
      calls.add(pd, std::move(args), build);
      if (m > 0)  // dst = max(dst, tmp), in place
        calls.add(max_pd, {{DNNL_ARG_SRC_0, dst}, {DNNL_ARG_SRC_1, tmp}, {DNNL_ARG_DST, dst}},
                  build);
    }
    build.kernel = std::make_unique<fg::PrimitiveSequenceKernel>(std::move(calls));
    return build;
  }

 private:
  int64_t units_ = 0;
  bool use_bias_ = true;
};

fg::OpInfo max_fusion_op() {
  return {"max_fusion", [] { return std::make_unique<MaxFusion>(); },
          "element-wise max of one dense projection per input"};
}

// ---------------------------------------------------------------- the check

struct Rng {  // deterministic values in [-1, 1)
  uint64_t s;
  float next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return float((s >> 40) & 0xffffff) / float(1 << 23) - 1.f;
  }
};

fg::Tensor random(const fg::Dims& shape, Rng& rng) {
  fg::Tensor t(fg::DType::f32, shape);
  for (size_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = rng.next();
  return t;
}

// max_fusion then dense + softmax with plain loops in double.
void naive(const std::vector<fg::Tensor>& xs, const fg::WeightStore& w, int64_t batch,
           int64_t units, int64_t classes, std::vector<double>& fused, std::vector<double>& probs) {
  fused.assign(batch * units, -INFINITY);
  for (size_t m = 0; m < xs.size(); ++m) {
    const fg::Tensor& k = *w.find(fmt::format("fusion.kernel_{}", m));
    const fg::Tensor& b = *w.find(fmt::format("fusion.bias_{}", m));
    const int64_t in = xs[m].shape()[1];
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t u = 0; u < units; ++u) {
        double acc = b.data<float>()[u];
        for (int64_t i = 0; i < in; ++i)
          acc += double(xs[m].data<float>()[n * in + i]) * k.data<float>()[i * units + u];
        fused[n * units + u] = std::max(fused[n * units + u], acc);
      }
  }
  const fg::Tensor& k = *w.find("classifier.kernel");
  const fg::Tensor& b = *w.find("classifier.bias");
  probs.assign(batch * classes, 0);
  for (int64_t n = 0; n < batch; ++n) {
    double mx = -INFINITY, sum = 0;
    for (int64_t c = 0; c < classes; ++c) {
      double acc = b.data<float>()[c];
      for (int64_t u = 0; u < units; ++u)
        acc += fused[n * units + u] * k.data<float>()[u * classes + c];
      probs[n * classes + c] = acc;
      mx = std::max(mx, acc);
    }
    for (int64_t c = 0; c < classes; ++c)
      sum += probs[n * classes + c] = std::exp(probs[n * classes + c] - mx);
    for (int64_t c = 0; c < classes; ++c) probs[n * classes + c] /= sum;
  }
}

// Largest |got - want| / (1e-5 + 1e-5 |want|); <= 1 means close.
double worst(const fg::Tensor& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return INFINITY;
  double w = 0;
  for (size_t i = 0; i < want.size(); ++i)
    w = std::max(w, std::abs(got.data<float>()[i] - want[i]) / (1e-5 + 1e-5 * std::abs(want[i])));
  return w;
}

int run(const std::string& path) {
  fg::OpRegistry ops = fg::builtin_ops();
  ops.add(max_fusion_op());

  // Weights with non-zero biases, in Keras shapes, keyed "<node>.<param>".
  const int64_t batch = 3, units = 6, classes = 3;
  const std::vector<int64_t> widths{13, 7, 5};
  Rng rng{42};
  fg::WeightStore weights;
  for (size_t m = 0; m < widths.size(); ++m) {
    weights.set(fmt::format("fusion.kernel_{}", m), random({widths[m], units}, rng));
    weights.set(fmt::format("fusion.bias_{}", m), random({units}, rng));
  }
  weights.set("classifier.kernel", random({units, classes}, rng));
  weights.set("classifier.bias", random({classes}, rng));

  fg::CompileOptions options;
  options.ops = &ops;
  options.weights = weights;
  options.threads = 1;
  fg::Session session = fg::load(path, options);
  std::cout << session.summary();

  std::map<std::string, fg::Tensor> inputs;
  std::vector<fg::Tensor> xs;
  const std::vector<std::string> names{"text", "image", "audio"};
  for (size_t m = 0; m < names.size(); ++m) {
    xs.push_back(random({batch, widths[m]}, rng));
    inputs[names[m]] = xs.back();
  }
  auto outputs = session.run(inputs);

  std::vector<double> fused, probs;
  naive(xs, weights, batch, units, classes, fused, probs);
  const double e1 = worst(outputs.at("fusion"), fused);
  const double e2 = worst(outputs.at("classifier"), probs);
  std::cout << fmt::format("fusion {} vs naive: worst error / tolerance = {:.3g}\n",
                           fg::format_shape(outputs.at("fusion").shape()), e1);
  std::cout << fmt::format("classifier {} vs naive: worst error / tolerance = {:.3g}\n",
                           fg::format_shape(outputs.at("classifier").shape()), e2);
  if (!(e1 <= 1 && e2 <= 1)) {
    std::cout << "custom_fusion: MISMATCH\n";
    return 1;
  }

  // A bad attribute is reported at its line and column in the YAML.
  try {
    fg::CompileOptions o;
    o.ops = &ops;
    fg::load_string(
        "name: bad\ninputs:\n  a: {shape: [4]}\n  b: {shape: [4]}\nnodes:\n"
        "  - {name: f, op: max_fusion, inputs: [a, b], units: 0}\noutputs: [f]\n",
        o, "bad.yaml");
    std::cout << "custom_fusion: units: 0 was accepted\n";
    return 1;
  } catch (const fg::Error& e) {
    std::cout << "expected error: " << e.what() << "\n";
    if (e.loc().line != 6) {
      std::cout << "custom_fusion: the error does not point at line 6\n";
      return 1;
    }
  }
  std::cout << "custom_fusion: ok\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : CUSTOM_FUSION_DIR "/graph.yaml";
  try {
    return run(path);
  } catch (const fg::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
