// The built-in ops, one line each. Ops registered from outside the core use OpRegistry::add the
// same way (see docs/extending.md).
#include "framework/registry.hpp"
#include "layers/builtin_ops.hpp"

namespace fg {

void register_builtin_ops(OpRegistry& registry) {
  // ---- convolution and pooling ----


  // ---- dense, shape and activation ops ----


  // ---- recurrent and embedding ----
  registry.add(layers::embedding_op());
  registry.add(layers::lstm_op());
  registry.add(layers::gru_op());


  // ---- normalization and merges ----


  // ---- fusion ops ----


}

}  // namespace fg
