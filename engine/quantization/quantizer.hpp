// int8 post-training quantization of a graph's weights (graph-runner quantize,
// docs/quantization.md): which nodes are quantized, their calibrated input scales, and the
// per-node sensitivity report.
//
//   static:  the f32 plan runs the calibration batches; a TensorObserver watches the input of
//            every dense, conv1d and conv2d node; each node gets per-output-channel s8 weights
//            and an input scale from the calibration method (u8 when the input was never
//            negative, else s8).
//   dynamic: no data; the dense nodes get s8 weights and quantize their input per run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/quantization/calibration.hpp"
#include "engine/weights.hpp"
#include "framework/graph_def.hpp"

namespace fg::quantization {

struct QuantizeOptions {
  // The default: on the fashion example (512 samples) percentile 99.99 kept the accuracy
  // (-0.04 points, 99.5 % top-1 agreement) where entropy lost 0.9 points (docs/performance.md).
  CalibrationMethod method = CalibrationMethod::percentile;
  double percentile = 99.99;
  bool dynamic = false;              // no calibration data: dense layers, dynamic inputs
  std::set<std::string> keep_float;  // nodes left in float (--keep-float)
  int threads = 0;
};

// Calls `visit` once per calibration batch (graph inputs by name, batch first).
using InputBatches =
    std::function<void(const std::function<void(const std::map<std::string, Tensor>&)>& visit)>;

struct QuantizedNode {
  std::string node, op;
  Int8Node::Input input = Int8Node::Input::dynamic;
  float input_scale = 0;  // static nodes
  float threshold = 0;    // the clipping threshold the method chose
  float max_abs = 0;      // max |input| over the calibration data
  double error = -1;      // --report: relative output error with only this node in int8
};

struct QuantizeResult {
  WeightStore weights;  // the float weights with the quantized nodes' int8 forms
  std::vector<QuantizedNode> nodes;
  std::vector<std::string> kept_float;  // candidates left in float, with the reason
  int64_t samples = 0;                  // calibration samples seen
};

// The nodes that have an int8 kernel (dense, conv1d, conv2d; dynamic: dense only) and do not
// share weights, in graph order.
std::vector<const NodeDef*> quantizable_nodes(const GraphDef& graph, bool dynamic);

// Quantizes `weights` (float32, validated against the graph). `batches` is not called for
// dynamic quantization. Throws fg::Error (an unknown --keep-float node, non-finite inputs).
QuantizeResult quantize(std::shared_ptr<const GraphDef> graph, const WeightStore& weights,
                        const InputBatches& batches, const QuantizeOptions& options);

// For each quantized node, the relative output error (|| y_int8 - y_f32 || / || y_f32 ||, over
// all outputs and batches) with only that node in int8, into result.nodes[i].error; returns
// the error with every node in int8.
double measure_sensitivity(std::shared_ptr<const GraphDef> graph, const WeightStore& f32_weights,
                           QuantizeResult& result, const InputBatches& batches, int threads);

}  // namespace fg::quantization
