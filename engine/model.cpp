#include "engine/model.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>

#include "engine/memory_budget.hpp"
#include "engine/plan.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/weight_cache.hpp"

namespace fg {

Model::Model(std::shared_ptr<const CompiledGraph> graph, WeightStore weights, ModelOptions options)
    : graph_(std::move(graph)),
      weights_(std::move(weights)),
      options_(options),
      weight_cache_(std::make_unique<WeightCache>()) {
  if (options_.threads < 0)
    throw Error(fmt::format("threads must be 0 (all cores) or more, got {}", options_.threads));
  if (options_.threads == 0) options_.threads = omp_get_num_procs();
  if (options_.max_cached_plans < 1)
    throw Error("max_cached_plans must be 1 or more (the plan being run is cached), got 0");
  if (options_.max_cached_plan_bytes < 1)
    throw Error("max_cached_plan_bytes must be 1 or more (the newest plan always stays), got 0");
  weights_.validate(*graph_);
}

Model::~Model() = default;

std::shared_ptr<Plan> Model::plan_for(const std::vector<Dims>& input_shapes) const {
  std::promise<std::shared_ptr<Plan>> promise;
  std::shared_future<std::shared_ptr<Plan>> cached;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(input_shapes);
    if (it != plans_.end()) {
      it->second.last_use = ++use_clock_;
      cached = it->second.plan;
    } else {
      CachedPlan entry;
      entry.plan = promise.get_future().share();
      entry.last_use = ++use_clock_;
      plans_.emplace(input_shapes, std::move(entry));
    }
  }
  // A cached plan, or one another thread is building (get() waits, and rethrows its error).
  if (cached.valid()) return cached.get();
  return build_plan(input_shapes, promise);
}

// Builds the plan this thread registered in the cache, outside the lock, and hands it (or the
// error) to every caller waiting for it.
std::shared_ptr<Plan> Model::build_plan(const std::vector<Dims>& input_shapes,
                                        std::promise<std::shared_ptr<Plan>>& promise) const {
  std::shared_ptr<Plan> plan;
  std::exception_ptr failure;
  try {
    if (options_.on_plan_build) options_.on_plan_build(input_shapes);
    check_memory_budget(input_shapes);
    plan = std::make_shared<Plan>(*graph_, input_shapes, weights_, *weight_cache_, options_.threads,
                                  options_.optimize, options_.max_idle_states, options_.precision);
  } catch (const std::bad_alloc&) {
    // An allocation outside the plan's passes (which name the node): name the shapes.
    failure = std::make_exception_ptr(
        Error(fmt::format("out of memory while building the plan for input shapes {}",
                          format_input_shapes(input_shapes)))
            .hint(kOutOfMemoryHint));
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      plans_.erase(input_shapes);  // not cached: the next call builds (and fails) again
    }
    promise.set_exception(failure);
    std::rethrow_exception(failure);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    CachedPlan& entry = plans_.at(input_shapes);  // building entries are never dropped
    entry.ready = true;
    entry.bytes = plan->arena_bytes();
    entry.built = plan;
    drop_least_recently_used(input_shapes);
  }
  promise.set_value(plan);
  return plan;
}

void Model::drop_least_recently_used(const std::vector<Dims>& keep) const {
  for (;;) {
    size_t bytes = 0;  // one arena per idle execution state, at least one per plan
    for (const auto& [shapes, entry] : plans_)
      if (entry.built) bytes += entry.bytes * std::max<size_t>(1, entry.built->idle_states());
    if (plans_.size() <= options_.max_cached_plans && bytes <= options_.max_cached_plan_bytes)
      return;
    auto oldest = plans_.end();
    for (auto it = plans_.begin(); it != plans_.end(); ++it)
      if (it->second.ready && it->first != keep &&
          (oldest == plans_.end() || it->second.last_use < oldest->second.last_use))
        oldest = it;
    if (oldest == plans_.end()) return;  // only the newest plan and plans being built remain
    plans_.erase(oldest);
  }
}

void Model::check_memory_budget(const std::vector<Dims>& input_shapes) const {
  fg::check_memory_budget(*graph_, input_shapes, weights_, options_.max_memory);
}

std::string Model::precision_warning() const {
  return fg::precision_warning(options_.precision);
}

std::string precision_warning(Precision precision) {
  if (precision == Precision::bf16 && !onednn::native_bf16_isa())
    return fmt::format(
        "precision bf16: oneDNN found {}, which has no native bf16 instructions (AVX-512 BF16); "
        "running in f32",
        onednn::cpu_isa_name());
  if (precision == Precision::int8 && !onednn::native_int8_isa())
    return fmt::format(
        "precision int8: oneDNN found {}, which has no VNNI instructions (AVX-512 VNNI or "
        "AVX-VNNI); the int8 layers run in f32 with their dequantized weights",
        onednn::cpu_isa_name());
  return "";
}

size_t Model::cached_plans() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plans_.size();
}

std::map<std::string, Tensor> Model::run(const std::map<std::string, Tensor>& inputs,
                                         const RunOptions& options) const {
  const auto& def = graph_->def();
  std::vector<std::string> names;
  for (const auto& in : def.inputs) names.push_back(in.name);
  for (const auto& [name, tensor] : inputs)
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw Error(fmt::format("'{}' is not an input of graph '{}'", name, def.name))
          .tensor(name)
          .hint(did_you_mean(name, names));
  std::vector<const Tensor*> ordered;
  std::vector<Dims> shapes;
  for (const auto& in : def.inputs) {
    auto it = inputs.find(in.name);
    if (it == inputs.end())
      throw Error(fmt::format("input '{}' is missing (the graph has inputs {})", in.name,
                              quoted_list(names)))
          .tensor(in.name);
    const Tensor& t = it->second;
    if (t.dtype() != in.dtype)
      throw Error(fmt::format("input '{}' must be {}, got {}", in.name, dtype_name(in.dtype),
                              dtype_name(t.dtype())))
          .tensor(in.name);
    Dims want{kDynamic};
    want.insert(want.end(), in.shape.begin(), in.shape.end());
    bool fits = t.shape().size() == want.size();
    for (size_t k = 0; fits && k < want.size(); ++k)
      fits = t.shape()[k] >= 1 && (want[k] == kDynamic || want[k] == t.shape()[k]);
    if (!fits)
      throw Error(fmt::format("input '{}' expects shape {} (batch first), got {}", in.name,
                              format_shape(want), format_shape(t.shape())))
          .tensor(in.name);
    if (!ordered.empty() && t.shape()[0] != shapes[0][0])
      throw Error(fmt::format("inputs '{}' and '{}' have different batch sizes ({} and {})",
                              def.inputs[0].name, in.name, shapes[0][0], t.shape()[0]))
          .tensor(in.name)
          .hint("every input of a run holds the same samples: give them the same first dim");
    ordered.push_back(&t);
    shapes.push_back(t.shape());
  }
  const std::shared_ptr<Plan> plan = plan_for(shapes);
  try {
    return plan->run(ordered, options);
  } catch (const std::bad_alloc&) {
    // What the plan does not name itself (its steps, arena and outputs name theirs).
    throw Error(fmt::format("out of memory while running the plan for input shapes {}",
                            format_input_shapes(shapes)))
        .hint(kOutOfMemoryHint);
  }
}

}  // namespace fg
