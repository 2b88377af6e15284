#include "framework/registry.hpp"

#include <fmt/format.h>

namespace fg {

void OpRegistry::add(OpInfo info) {
  if (info.name.empty() || !info.create) throw Error("an op needs a name and a factory");
  if (ops_.count(info.name)) throw Error(fmt::format("op '{}' is registered twice", info.name));
  std::string name = info.name;
  ops_.emplace(std::move(name), std::move(info));
}

const OpInfo* OpRegistry::find(const std::string& name) const {
  auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : ops_) out.push_back(name);
  return out;
}

}  // namespace fg
