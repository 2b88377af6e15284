// A host tensor: dtype, full shape (batch first) and contiguous row-major (C order) data.
// The data is either owned or borrowed (e.g. from a weights file read into memory), kept alive by
// `keep_`.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "framework/shape.hpp"

namespace fg {

class Tensor {
 public:
  Tensor() = default;
  // Owned, zero-filled storage. Throws fg::Error for a dynamic dim or a tensor larger than
  // kMaxTensorBytes (docs/limits.md); std::bad_alloc when the memory is not there.
  Tensor(DType dtype, Dims shape);
  // Borrowed storage; `keep_alive` owns whatever `data` points into. The same checks, and
  // `data` must not be null unless the shape has no elements.
  static Tensor borrow(DType dtype, Dims shape, const void* data,
                       std::shared_ptr<const void> keep_alive);

  DType dtype() const { return dtype_; }
  const Dims& shape() const { return shape_; }
  size_t size() const { return size_; }  // number of elements
  size_t bytes() const { return size_ * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr && size_ == 0; }

  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }
  // Mutable access; only valid for owned tensors (throws fg::Error otherwise).
  template <typename T>
  T* mutable_data() {
    return static_cast<T*>(mutable_ptr());
  }
  const void* raw() const { return data_; }
  // Whether the storage is the tensor's own (false: borrowed, see borrow()).
  bool owns_data() const { return owned_; }

 private:
  void* mutable_ptr();

  DType dtype_ = DType::f32;
  Dims shape_;
  size_t size_ = 0;
  const void* data_ = nullptr;
  std::shared_ptr<const void> keep_;
  bool owned_ = false;
};

}  // namespace fg
