// Factories of the built-in ops (one per op), defined in layers/<op>.cpp and listed in
// layers/registry.cpp. Each returns an OpInfo {name, create, summary}.
#pragma once

#include "framework/registry.hpp"

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

// ---- recurrent and embedding ----
OpInfo embedding_op();
OpInfo lstm_op();
OpInfo gru_op();

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
