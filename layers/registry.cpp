// The built-in ops: each op's factory (defined in its layers/<op>.cpp) declared here and added
// below, one line each. Ops registered from outside the core use OpRegistry::add the same way
// (see docs/extending.md).
#include "layers/registry.hpp"

// Each returns an OpInfo {name, create, summary}.
namespace fg::layers {

// ---- convolution and pooling ----
OpInfo conv1d_op();
OpInfo conv2d_op();
OpInfo max_pooling1d_op();
OpInfo max_pooling2d_op();
OpInfo average_pooling1d_op();
OpInfo average_pooling2d_op();
OpInfo global_average_pooling1d_op();
OpInfo global_average_pooling2d_op();
OpInfo global_max_pooling1d_op();
OpInfo global_max_pooling2d_op();

// ---- dense, shape and activation ops ----
OpInfo dense_op();
OpInfo flatten_op();
OpInfo reshape_op();
OpInfo dropout_op();
OpInfo activation_op();
OpInfo softmax_op();
OpInfo permute_op();
OpInfo repeat_vector_op();
OpInfo reverse_op();

// ---- Keras activation layers with parameters (layers/pointwise_activation.hpp) ----
OpInfo relu_op();
OpInfo leaky_relu_op();
OpInfo elu_op();
OpInfo thresholded_relu_op();
OpInfo prelu_op();

// ---- recurrent and embedding ----
OpInfo embedding_op();
OpInfo masking_op();
OpInfo lstm_op();
OpInfo gru_op();
OpInfo simple_rnn_op();

// ---- normalization and merges ----
OpInfo batch_normalization_op();
OpInfo layer_normalization_op();
OpInfo concatenate_op();
OpInfo add_op();
OpInfo subtract_op();
OpInfo multiply_op();
OpInfo average_op();
OpInfo maximum_op();
OpInfo minimum_op();

// ---- fusion ops ----
OpInfo weighted_average_op();
OpInfo gated_op();
OpInfo film_op();
OpInfo upsampling2d_op();

// tensor_fusion, low_rank_fusion, cross_attention (docs/ops/fusion_tensor_attention.md)
OpInfo tensor_fusion_op();
OpInfo low_rank_fusion_op();
OpInfo cross_attention_op();

}  // namespace fg::layers

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
  registry.add(layers::dense_op());
  registry.add(layers::flatten_op());
  registry.add(layers::reshape_op());
  registry.add(layers::dropout_op());
  registry.add(layers::activation_op());
  registry.add(layers::softmax_op());
  registry.add(layers::permute_op());
  registry.add(layers::repeat_vector_op());
  registry.add(layers::reverse_op());

  // ---- Keras activation layers with parameters ----
  registry.add(layers::relu_op());
  registry.add(layers::leaky_relu_op());
  registry.add(layers::elu_op());
  registry.add(layers::thresholded_relu_op());
  registry.add(layers::prelu_op());

  // ---- recurrent and embedding ----
  registry.add(layers::embedding_op());
  registry.add(layers::masking_op());
  registry.add(layers::lstm_op());
  registry.add(layers::gru_op());
  registry.add(layers::simple_rnn_op());

  // ---- normalization and merges ----
  registry.add(layers::batch_normalization_op());
  registry.add(layers::layer_normalization_op());
  registry.add(layers::concatenate_op());
  registry.add(layers::add_op());
  registry.add(layers::subtract_op());
  registry.add(layers::multiply_op());
  registry.add(layers::average_op());
  registry.add(layers::maximum_op());
  registry.add(layers::minimum_op());

  // ---- fusion ops ----
  registry.add(layers::weighted_average_op());
  registry.add(layers::gated_op());
  registry.add(layers::film_op());
  registry.add(layers::upsampling2d_op());

  // tensor_fusion, low_rank_fusion, cross_attention
  registry.add(layers::tensor_fusion_op());
  registry.add(layers::low_rank_fusion_op());
  registry.add(layers::cross_attention_op());
}

OpRegistry builtin_ops() {
  OpRegistry registry;
  register_builtin_ops(registry);
  return registry;
}

}  // namespace fg
