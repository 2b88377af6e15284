// Tensor types as the compiler sees them: a dtype, a shape whose first dimension is the batch,
// and whether a Keras-style mask travels with the tensor. A dimension may be unknown
// (kDynamic: the batch, or a `null` length in the YAML) until concrete shapes arrive.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fg {

// i8 only holds int8-quantized weights (engine/weights.hpp); graph tensors are f32 or i32.
enum class DType { f32, i32, i8 };

std::string_view dtype_name(DType dtype);  // "float32", "int32", "int8"
size_t dtype_size(DType dtype);

using Dim = int64_t;
using Dims = std::vector<Dim>;
constexpr Dim kDynamic = -1;

struct TensorType {
  Dims shape;  // shape[0] is the batch
  DType dtype = DType::f32;
  bool masked = false;  // a [batch, shape[1]] mask travels with this tensor

  int rank() const { return static_cast<int>(shape.size()); }
  bool is_concrete() const;
  bool operator==(const TensorType& other) const {
    return shape == other.shape && dtype == other.dtype && masked == other.masked;
  }
};

// Keras style: (None, 224, 224, 3)
std::string format_shape(const Dims& shape);
std::string format_type(const TensorType& type);  // "(None, 10) float32"

// Product of all dims, or kDynamic if any is dynamic. Throws fg::Error on overflow.
Dim num_elements(const Dims& shape);
// Product of the dims after the batch (per-sample size), or kDynamic.
Dim sample_elements(const Dims& shape);

// The largest tensor FusionGraph creates or accepts: 2^40 bytes (1 TiB), i.e. 2^38 float32 or
// int32 elements. Every element and byte count (inferred types, weights, bound --dim / --batch
// shapes, Tensor storage) is checked against it; docs/limits.md.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 40;

// Bytes of a tensor of `shape` and `dtype`, counting dynamic dims as 1 (so a symbolic type is
// checked for what is already known), or nullopt when that exceeds kMaxTensorBytes (products
// are computed without overflow).
std::optional<int64_t> tensor_bytes_within_limit(const Dims& shape, DType dtype);
// The same as a check: throws fg::Error("<what> of shape S would need more than ...") naming
// the limit; returns the byte count.
int64_t check_tensor_size(const Dims& shape, DType dtype, const std::string& what);

// Arithmetic on possibly-dynamic dims. Overflow throws fg::Error("shape arithmetic overflows").
Dim dim_mul(Dim a, Dim b);
Dim dim_add(Dim a, Dim b);

// Normalises a Keras axis (negative counts from the end) for a tensor of `rank`; returns -1 if
// it is out of range.
int normalize_axis(int axis, int rank);

}  // namespace fg
