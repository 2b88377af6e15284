#include "engine/model.hpp"

#include <fmt/format.h>
#include <omp.h>

#include "engine/memory_budget.hpp"
#include "engine/plan.hpp"
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
  weights_.validate(*graph_);
}

Model::~Model() = default;

std::shared_ptr<Plan> Model::plan_for(const std::vector<Dims>& input_shapes) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = plans_.find(input_shapes);
  if (it != plans_.end()) return it->second;
  check_memory_budget(*graph_, input_shapes, weights_, options_.max_memory);
  auto plan = std::make_shared<Plan>(*graph_, input_shapes, weights_, *weight_cache_,
                                     options_.threads, options_.optimize);
  plans_.emplace(input_shapes, plan);
  return plan;
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
    ordered.push_back(&t);
    shapes.push_back(t.shape());
  }
  return plan_for(shapes)->run(ordered, options);
}

}  // namespace fg
