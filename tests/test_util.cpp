#include "tests/test_util.hpp"

#include <fmt/format.h>

#include <cmath>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"

namespace fg::test {

namespace {
uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

Tensor random_tensor(const Dims& shape, uint64_t seed, float lo, float hi) {
  Tensor t(DType::f32, shape);
  float* p = t.mutable_data<float>();
  uint64_t state = seed * 7919 + 17;
  for (size_t i = 0; i < t.size(); ++i) {
    double u = static_cast<double>(splitmix(state) >> 11) / 9007199254740992.0;
    p[i] = static_cast<float>(lo + (hi - lo) * u);
  }
  return t;
}

Tensor random_ints(const Dims& shape, uint64_t seed, int lo, int hi) {
  Tensor t(DType::i32, shape);
  int32_t* p = t.mutable_data<int32_t>();
  uint64_t state = seed * 104729 + 3;
  for (size_t i = 0; i < t.size(); ++i)
    p[i] = lo + static_cast<int32_t>(splitmix(state) % static_cast<uint64_t>(hi - lo + 1));
  return t;
}

Tensor make_tensor(const Dims& shape, const std::vector<float>& values) {
  Tensor t(DType::f32, shape);
  REQUIRE(values.size() == t.size());
  std::copy(values.begin(), values.end(), t.mutable_data<float>());
  return t;
}

Tensor make_int_tensor(const Dims& shape, const std::vector<int>& values) {
  Tensor t(DType::i32, shape);
  REQUIRE(values.size() == t.size());
  std::copy(values.begin(), values.end(), t.mutable_data<int32_t>());
  return t;
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> out(t.size());
  if (t.dtype() == DType::f32) {
    for (size_t i = 0; i < t.size(); ++i) out[i] = t.data<float>()[i];
  } else {
    for (size_t i = 0; i < t.size(); ++i) out[i] = t.data<int32_t>()[i];
  }
  return out;
}

namespace {
// The outputs of every other plan run_yaml ran, by the data of the output it returned: check_close
// compares each of them with the reference too.
struct OtherPlanOutput {
  std::string plan;  // e.g. "unfused plan, 2 threads"
  Tensor out;
  // The returned output the entry is keyed by, held so that its storage (the key) is not freed
  // and reused by a later tensor, which check_close would then compare with these outputs.
  Tensor key;
};
std::map<const void*, std::vector<OtherPlanOutput>>& other_plan_outputs() {
  static std::map<const void*, std::vector<OtherPlanOutput>> outputs;
  return outputs;
}

void check_close_one(const Tensor& got, const std::vector<double>& want, double rtol, double atol,
                     const std::string& plan) {
  REQUIRE(got.size() == want.size());
  std::vector<double> g = to_doubles(got);
  size_t bad = 0;
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double err = std::fabs(g[i] - want[i]);
    double tol = atol + rtol * std::fabs(want[i]);
    if (!(err <= tol)) {  // also catches NaN
      if (bad < 5) INFO(fmt::format("element {}: got {}, want {}", i, g[i], want[i]));
      ++bad;
      if (!(err <= worst)) {
        worst = err;
        worst_i = i;
      }
    }
  }
  if (bad) {
    FAIL_CHECK(
        fmt::format("{}: {} of {} elements differ; worst at {}: got {}, want {} (rtol {}, atol {})",
                    plan, bad, g.size(), worst_i, g[worst_i], want[worst_i], rtol, atol));
  }
}
}  // namespace

std::map<std::string, Tensor> run_yaml(const std::string& yaml,
                                       const std::map<std::string, Tensor>& inputs,
                                       const std::map<std::string, Tensor>& weights, int threads) {
  auto def = load_graph_string(yaml, "test.yaml");
  auto graph = std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops()));
  WeightStore store;
  for (const auto& [key, t] : weights) store.set(key, t);
  std::vector<Dims> shapes;
  for (const auto& in : def->inputs)
    if (inputs.count(in.name)) shapes.push_back(inputs.at(in.name).shape());
  RunOptions run_options;
  run_options.fill_arena_with_nan = true;  // a read before a write shows
  std::map<std::string, Tensor> first;
  other_plan_outputs().clear();
  for (bool optimize : {true, false})
    for (int t : threads > 0 ? std::vector<int>{threads} : std::vector<int>{1, 2}) {
      ModelOptions options;
      options.threads = t;
      options.optimize = optimize;
      Model model(graph, store, options);
      auto out = model.run(inputs, run_options);
      const std::string plan = fmt::format("{} plan, {} thread{}",
                                           optimize ? "optimized" : "unfused", t, t > 1 ? "s" : "");
      CHECK_MESSAGE(model.plan_for(shapes)->arena_problem() == "", plan);
      if (first.empty()) {
        first = out;
        continue;
      }
      for (const auto& [name, tensor] : out)
        other_plan_outputs()[first.at(name).raw()].push_back({plan, tensor, first.at(name)});
    }
  return first;
}

void check_close(const Tensor& got, const std::vector<double>& want, double rtol, double atol) {
  const auto others = other_plan_outputs().find(got.raw());
  check_close_one(got, want, rtol, atol,
                  others == other_plan_outputs().end() ? "result" : "optimized plan");
  if (others == other_plan_outputs().end()) return;
  for (const auto& other : others->second) check_close_one(other.out, want, rtol, atol, other.plan);
}

void check_shape(const Tensor& got, const Dims& want) {
  CHECK_MESSAGE(got.shape() == want,
                fmt::format("shape {} != {}", format_shape(got.shape()), format_shape(want)));
}

std::shared_ptr<CompiledGraph> compile_yaml(const std::string& yaml, const std::string& file) {
  return std::make_shared<CompiledGraph>(
      compile_graph(load_graph_string(yaml, file), builtin_ops()));
}

std::string step_impl(const Plan& plan, const std::string& step) {
  for (const auto& s : plan.steps())
    if (s.name == step) return s.kernel->impl_info();
  return "no step " + step;
}

std::string compile_error(const std::string& yaml, const std::string& file) {
  try {
    auto def = load_graph_string(yaml, file);
    compile_graph(def, builtin_ops());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string source_path(const std::string& relative) {
  return std::string(FG_SOURCE_DIR) + "/" + relative;
}

}  // namespace fg::test

namespace fg::test {
std::string graph_runner_path() {
  return FG_GRAPH_RUNNER;
}
}  // namespace fg::test
