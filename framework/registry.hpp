// The op registry: op name -> factory. Built-in ops are listed, one line each, in
// layers/registry.cpp (register_builtin_ops); code outside the core adds its own ops to a
// registry through the same interface. No static initialisers.
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

  // A registry holding every built-in op (a fresh copy each call; cheap).
  static OpRegistry builtins();

 private:
  std::map<std::string, OpInfo> ops_;
};

// Defined in layers/registry.cpp.
void register_builtin_ops(OpRegistry& registry);

}  // namespace fg
