// The op registry: op name -> factory. The framework knows no op: the built-in ops are listed,
// one line each, in layers/registry.cpp (fg::builtin_ops(), layers/registry.hpp); code outside
// the core adds its own ops to a registry through the same interface. No static initialisers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/op.hpp"

namespace fg {

struct OpInfo {
  std::string name;  // the YAML `op:` value, Keras snake_case
  std::function<std::unique_ptr<Op>()> create;
  std::string summary;  // one line for docs and --help
};

class OpRegistry {
 public:
  // Throws fg::Error if the name is taken.
  void add(OpInfo info);
  const OpInfo* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, OpInfo> ops_;
};

}  // namespace fg
