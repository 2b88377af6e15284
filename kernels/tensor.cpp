#include "kernels/tensor.hpp"

#include <fmt/format.h>

#include <cstring>

#include "framework/error.hpp"

namespace fg {

namespace {
// The element count of a concrete shape within kMaxTensorBytes (so the byte count cannot wrap).
size_t checked_count(const Dims& shape, DType dtype) {
  for (Dim d : shape)
    if (d < 0) throw Error("a tensor needs a concrete shape, got " + format_shape(shape));
  check_tensor_size(shape, dtype, "a tensor");
  return static_cast<size_t>(num_elements(shape));
}
}  // namespace

Tensor::Tensor(DType dtype, Dims shape) : dtype_(dtype), shape_(std::move(shape)) {
  size_ = checked_count(shape_, dtype_);
  // 64-byte aligned, zero-filled storage
  size_t bytes = std::max<size_t>(64, (size_ * dtype_size(dtype_) + 63) / 64 * 64);
  void* p = ::operator new[](bytes, std::align_val_t(64));
  std::memset(p, 0, bytes);
  keep_ = std::shared_ptr<const void>(
      p, [](const void* q) { ::operator delete[](const_cast<void*>(q), std::align_val_t(64)); });
  data_ = p;
  owned_ = true;
}

Tensor Tensor::borrow(DType dtype, Dims shape, const void* data,
                      std::shared_ptr<const void> keep_alive) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.size_ = checked_count(t.shape_, dtype);
  if (data == nullptr && t.size_ > 0)
    throw Error(fmt::format("Tensor::borrow of shape {} was given a null data pointer",
                            format_shape(t.shape_)))
        .hint("pass the address of at least size() elements, or use an owned Tensor");
  t.data_ = data;
  t.keep_ = std::move(keep_alive);
  t.owned_ = false;
  return t;
}

void* Tensor::mutable_ptr() {
  if (!owned_ && data_ != nullptr)
    throw Error("this tensor borrows read-only data and cannot be written");
  return const_cast<void*>(data_);
}

}  // namespace fg
