// The built-in ops, one line each. Ops registered from outside the core use OpRegistry::add the
// same way (see docs/extending.md).
#include "framework/registry.hpp"

#include "layers/builtin_ops.hpp"

namespace fg {

void register_builtin_ops(OpRegistry& registry) {
  // ---- convolution and pooling ----
  registry.add(layers::conv1d_op());
  registry.add(layers::conv2d_op());
  registry.add(layers::max_pooling1d_op());
  registry.add(layers::max_pooling2d_op());
  registry.add(layers::average_pooling1d_op());
  registry.add(layers::average_pooling2d_op());
  registry.add(layers::global_average_pooling1d_op());
  registry.add(layers::global_average_pooling2d_op());
  registry.add(layers::global_max_pooling1d_op());
  registry.add(layers::global_max_pooling2d_op());

  // ---- dense, shape and activation ops ----

  // ---- recurrent and embedding ----
  registry.add(layers::embedding_op());
  registry.add(layers::lstm_op());
  registry.add(layers::gru_op());

  // ---- normalization and merges ----

  // ---- fusion ops ----
}

}  // namespace fg
