#include "kernels/weight_cache.hpp"

namespace fg {

dnnl::memory WeightCache::get_or_make(const std::string& key, const dnnl::memory::desc& desc,
                                      const std::function<dnnl::memory()>& make) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& list = entries_[key];
  for (const auto& mem : list)
    if (mem.get_desc() == desc) return mem;
  dnnl::memory mem = make();
  list.push_back(mem);
  return mem;
}

}  // namespace fg
