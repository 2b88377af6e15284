// int8 post-training quantization (docs/quantization.md): what `graph-runner quantize` uses.
//
//   fg::quantization::QuantizeOptions options;            // percentile calibration by default
//   fg::quantization::QuantizeResult r = fg::quantization::quantize(graph, weights, batches,
//                                                                    options);
//   r.weights.save_safetensors("model.int8.safetensors");  // run it: CompileOptions::weights_file
#pragma once

#include "engine/quantization/calibration.hpp"
#include "engine/quantization/quantizer.hpp"
#include "fusiongraph.hpp"
