// Reordered weights and derived constants, shared by every plan of one Model: a weight is
// reordered once per (key, layout), not once per input-shape signature.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

namespace fg {

class WeightCache {
 public:
  dnnl::memory get_or_make(const std::string& key, const dnnl::memory::desc& desc,
                           const std::function<dnnl::memory()>& make);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<dnnl::memory>> entries_;
};

}  // namespace fg
