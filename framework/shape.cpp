#include "framework/shape.hpp"

#include <fmt/format.h>

#include <limits>

#include "framework/error.hpp"

namespace fg {

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "float32";
    case DType::i32:
      return "int32";
    case DType::i8:
      return "int8";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  return dtype == DType::i8 ? 1 : 4;
}

bool TensorType::is_concrete() const {
  for (Dim d : shape)
    if (d == kDynamic) return false;
  return true;
}

std::string format_shape(const Dims& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i] == kDynamic ? std::string("None") : std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

std::string format_type(const TensorType& type) {
  return fmt::format("{} {}{}", format_shape(type.shape), dtype_name(type.dtype),
                     type.masked ? " masked" : "");
}

Dim dim_mul(Dim a, Dim b) {
  if (a == kDynamic || b == kDynamic) return kDynamic;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a)
    throw Error(fmt::format("shape arithmetic overflows: {} x {}", a, b))
        .hint(
            "sizes this large exceed the largest tensor FusionGraph supports (2^40 bytes); see "
            "docs/limits.md");
  return a * b;
}

Dim dim_add(Dim a, Dim b) {
  if (a == kDynamic || b == kDynamic) return kDynamic;
  if (b > std::numeric_limits<int64_t>::max() - a)
    throw Error(fmt::format("shape arithmetic overflows: {} + {}", a, b))
        .hint(
            "sizes this large exceed the largest tensor FusionGraph supports (2^40 bytes); see "
            "docs/limits.md");
  return a + b;
}

std::optional<int64_t> tensor_bytes_within_limit(const Dims& shape, DType dtype) {
  int64_t bytes = static_cast<int64_t>(dtype_size(dtype));
  bool zero = false;
  for (Dim d : shape) {
    if (d == kDynamic) continue;
    if (d == 0) zero = true;
    if (d < 0 || __builtin_mul_overflow(bytes, d, &bytes) || bytes > kMaxTensorBytes) {
      // a zero dim anywhere makes the tensor empty, however large the other dims are
      if (d >= 0) {
        for (Dim rest : shape)
          if (rest == 0) return 0;
      }
      return std::nullopt;
    }
  }
  return zero ? 0 : bytes;
}

int64_t check_tensor_size(const Dims& shape, DType dtype, const std::string& what) {
  if (auto bytes = tensor_bytes_within_limit(shape, dtype)) return *bytes;
  throw Error(fmt::format("{} of shape {} {} would need more than {} bytes (2^40, 1 TiB), the "
                          "largest tensor FusionGraph supports",
                          what, format_shape(shape), dtype_name(dtype), kMaxTensorBytes))
      .hint("see docs/limits.md");
}

Dim num_elements(const Dims& shape) {
  Dim n = 1;
  for (Dim d : shape) n = dim_mul(n, d);
  return n;
}

Dim sample_elements(const Dims& shape) {
  Dim n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n = dim_mul(n, shape[i]);
  return n;
}

int normalize_axis(int axis, int rank) {
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return -1;
  return axis;
}

}  // namespace fg
