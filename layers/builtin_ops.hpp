// Factories of the built-in ops (one per op), defined in layers/<op>.cpp and listed in
// layers/registry.cpp. Each returns an OpInfo {name, create, summary}.
#pragma once

#include "framework/registry.hpp"

namespace fg::layers {

// ---- convolution and pooling ----


// ---- dense, shape and activation ops ----


// ---- recurrent and embedding ----


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


}  // namespace fg::layers
