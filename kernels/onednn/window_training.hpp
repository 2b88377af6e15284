// Training descriptors (oneDNN 2.x API) of the window ops: convolution, pooling and resampling,
// for the training kernels of layers/conv.cpp, layers/pooling.cpp and layers/upsampling2d.cpp.
// Every forward pd is forward_training and is the hint of its backward pds.
#pragma once

#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

// A training convolution: forward (no post-ops), backward data and backward weights (with
// diff_bias when `bias`). `src`, `weights` and `dst` dims in oneDNN order ({N, C, spatial...},
// {O, I, spatial...}); every activation and weight desc is format_tag::any, so each pd picks its
// own (blocked) layouts: query them and reorder.
struct ConvTrainingPds {
  dnnl::convolution_forward::primitive_desc forward;
  dnnl::convolution_backward_data::primitive_desc backward_data;
  dnnl::convolution_backward_weights::primitive_desc backward_weights;
};
ConvTrainingPds make_conv_training_pds(const memory::dims& src, const memory::dims& weights,
                                       bool bias, const memory::dims& dst,
                                       const WindowGeometry& geometry);

// A training pooling (max, or average excluding padding) over the given concrete descs (diff_src
// / diff_dst in the src / dst layouts). Max pooling's forward writes a workspace
// (forward.workspace_desc()) that its backward reads.
struct PoolTrainingPds {
  dnnl::pooling_forward::primitive_desc forward;
  dnnl::pooling_backward::primitive_desc backward;
};
PoolTrainingPds make_pool_training_pds(bool max, const memory::desc& src, const memory::desc& dst,
                                       const memory::dims& kernel, const WindowGeometry& geometry);

// A training resampling (nearest, or linear with half-pixel centres) of {N, C, H, W} descs.
struct ResamplingTrainingPds {
  dnnl::resampling_forward::primitive_desc forward;
  dnnl::resampling_backward::primitive_desc backward;
};
ResamplingTrainingPds make_resampling_training_pds(bool linear, const memory::desc& src,
                                                   const memory::desc& dst);

}  // namespace fg::onednn
