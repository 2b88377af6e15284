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

size_t WeightCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t total = 0;
  for (const auto& [key, list] : entries_)
    for (const auto& mem : list) total += mem.get_desc().get_size();
  return total;
}

}  // namespace fg
