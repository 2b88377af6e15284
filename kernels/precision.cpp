#include "kernels/precision.hpp"

#include <fmt/format.h>

#include "framework/error.hpp"

namespace fg {

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::f32:
      return "f32";
    case Precision::bf16:
      return "bf16";
    case Precision::int8:
      return "int8";
  }
  return "f32";
}

std::vector<std::string> precision_names() {
  return {precision_name(Precision::f32), precision_name(Precision::bf16),
          precision_name(Precision::int8)};
}

Precision parse_precision(const std::string& name) {
  for (Precision p : {Precision::f32, Precision::bf16, Precision::int8})
    if (name == precision_name(p)) return p;
  throw Error(fmt::format("unknown precision '{}': expected one of {}", name,
                          fmt::join(precision_names(), ", ")))
      .hint(
          "bf16 runs dense and convolution layers with bfloat16 inputs and weights; int8 runs "
          "them with int8 inputs and weights (weights from `graph-runner quantize`, or dense "
          "layers quantized per batch without one)");
}

}  // namespace fg
