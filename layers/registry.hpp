// The built-in ops. The framework's OpRegistry knows no op; this is where the layers hand theirs
// over, one line each, in layers/registry.cpp.
#pragma once

#include "framework/registry.hpp"

namespace fg {

// Adds every built-in op to `registry`.
void register_builtin_ops(OpRegistry& registry);

// A registry holding every built-in op (a fresh copy each call; cheap).
OpRegistry builtin_ops();

}  // namespace fg
