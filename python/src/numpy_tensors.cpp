#include "numpy_tensors.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

namespace fg::python {

namespace {

// Keeps a Python object alive from C++ (a Tensor's or HostArray's keep-alive); the last
// reference may be dropped on a thread without the GIL, so the deleter takes it.
std::shared_ptr<const void> keep_alive(py::object object) {
  auto* held = new py::object(std::move(object));
  return std::shared_ptr<const void>(held, [](const void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<const py::object*>(p);
  });
}

Dims shape_of(const py::array& a) {
  Dims shape;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<int64_t>(a.shape(d)));
  return shape;
}

bool usable_as_is(const py::array& a, const py::dtype& want) {
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  return py::str(a.dtype().attr("str")).equal(want.attr("str")) &&
         (flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) &&
         (flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_);
}

char kind_of(const py::array& a) {
  return a.dtype().kind();
}

std::string type_name(py::handle value) {
  return py::str(value.get_type().attr("__name__"));
}

// np.asarray(value), or an fg::Error naming `what` (None, ragged lists, objects numpy rejects).
py::array as_array(const std::string& what, py::handle value, int flags = 0) {
  py::array a;
  if (!value.is_none()) {
    try {
      a = py::reinterpret_steal<py::array>(
          py::detail::npy_api::get().PyArray_FromAny_(value.ptr(), nullptr, 0, 0, flags, nullptr));
    } catch (const py::error_already_set&) {
    }
    if (!a) PyErr_Clear();
  }
  if (!a || a.dtype().kind() == 'O')
    throw Error(fmt::format("{}: expected an array of numbers, got a {}{}", what, type_name(value),
                            a ? " that NumPy reads only as objects" : ""))
        .hint("give a NumPy array (or nested lists of equal lengths) of bool, integer or float");
  return a;
}

// Float ids must be whole numbers in int32's range to become ids.
void check_whole_ids(const std::string& input, const py::array& a) {
  py::array_t<double, py::array::c_style | py::array::forcecast> d(a);
  const double* p = d.data();
  for (py::ssize_t i = 0; i < d.size(); ++i) {
    const double v = p[i];
    if (!(std::floor(v) == v) || v < std::numeric_limits<int32_t>::min() ||
        v > std::numeric_limits<int32_t>::max())
      throw Error(fmt::format("input '{}' takes int32 ids; the {} array holds {} at flat index {}, "
                              "which is not a whole number in int32's range",
                              input, std::string(py::str(a.dtype())), v, i))
          .tensor(input)
          .hint("give integer token ids (e.g. array.astype(np.int32))");
  }
}

void check_int_range(const std::string& input, const py::array& a) {
  if (a.size() == 0 || a.dtype().itemsize() < 4 || (a.dtype().itemsize() == 4 && kind_of(a) == 'i'))
    return;
  const py::object lo = a.attr("min")(), hi = a.attr("max")();
  const long long min = lo.cast<long long>();
  const unsigned long long max_u =
      kind_of(a) == 'u'
          ? hi.cast<unsigned long long>()
          : static_cast<unsigned long long>(std::max<long long>(0, hi.cast<long long>()));
  if (min < std::numeric_limits<int32_t>::min() ||
      max_u > static_cast<unsigned long long>(std::numeric_limits<int32_t>::max()))
    throw Error(fmt::format("input '{}' takes int32 ids; the {} array holds values from {} to {}, "
                            "outside int32's range",
                            input, std::string(py::str(a.dtype())), std::string(py::str(lo)),
                            std::string(py::str(hi))))
        .tensor(input)
        .hint("ids index an embedding: they must be below its input_dim");
}

void check_convertible(const std::string& input, const py::array& a, DType dtype) {
  const char kind = kind_of(a);
  const bool numeric = kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f';
  if (!numeric)
    throw Error(fmt::format("input '{}' takes {} values, got an array of dtype {}", input,
                            dtype_name(dtype), std::string(py::str(a.dtype()))))
        .tensor(input)
        .hint(kind == 'U' || kind == 'O' || kind == 'S'
                  ? "strings are raw values: only inputs that declare `preprocessing:` take them"
                  : "give a numeric array (bool, integer or float)");
  if (dtype == DType::i32 && kind == 'f') check_whole_ids(input, a);
  if (dtype == DType::i32 && (kind == 'i' || kind == 'u')) check_int_range(input, a);
}

}  // namespace

py::dtype numpy_dtype(DType dtype) {
  return dtype == DType::f32 ? py::dtype::of<float>() : py::dtype::of<int32_t>();
}

Tensor to_tensor(const std::string& input, py::handle value, DType dtype, bool* copied) {
  py::array a = as_array(fmt::format("input '{}'", input), value);
  const py::dtype want = numpy_dtype(dtype);
  const bool as_is = usable_as_is(a, want);
  if (!as_is) {
    check_convertible(input, a, dtype);
    a = py::array::ensure(a.attr("astype")(want, py::arg("order") = "C"));
  }
  if (copied) *copied = !as_is;
  const Dims shape = shape_of(a);
  const void* data = a.data();
  return Tensor::borrow(dtype, shape, data, keep_alive(a));
}

py::array to_numpy(Tensor tensor) {
  const py::dtype dtype = numpy_dtype(tensor.dtype());
  std::vector<py::ssize_t> shape(tensor.shape().begin(), tensor.shape().end());
  if (!tensor.owns_data()) {  // a copy the array owns
    py::array out(dtype, shape);
    std::memcpy(out.mutable_data(), tensor.raw(), tensor.bytes());
    return out;
  }
  auto* held = new Tensor(std::move(tensor));
  py::capsule base(held, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(dtype, shape, {}, held->raw(), base);
}

HostArray to_host_array(const std::string& what, py::handle value) {
  py::array a = as_array(
      what, value,
      py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_);
  const char kind = kind_of(a);
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    throw Error(fmt::format("{}: expected a numeric array (bool, integer or float), got dtype {}",
                            what, std::string(py::str(a.dtype()))))
        .hint("preprocess raw values first (model.preprocess), or train from a table file");
  // A data folder's dtypes are <f4 <f8 <i4 <i8: others are widened to one of them first (bool
  // and small ints to int32, large unsigned ints to int64, float16 to float32), as np.save of
  // the converted array would give.
  const size_t size = static_cast<size_t>(a.dtype().itemsize());
  const char* widened = nullptr;
  if (kind == 'b' || ((kind == 'i' || kind == 'u') && size < 4) || (kind == 'u' && size == 4))
    widened = kind == 'u' && size == 4 ? "<i8" : "<i4";
  else if (kind == 'u')
    widened = "<i8";
  else if (kind == 'f' && size < 4)
    widened = "<f4";
  else if (kind == 'f' && size > 8)
    widened = "<f8";
  if (widened)
    a = as_array(what, a.attr("astype")(widened));
  else if (!py::str(a.dtype().attr("byteorder")).equal(py::str("=")) &&
           !py::str(a.dtype().attr("byteorder")).equal(py::str("<")))
    a = as_array(what, a.attr("astype")(a.dtype().attr("newbyteorder")("<")));
  HostArray h;
  h.descr = py::str(a.dtype().attr("str"));
  h.shape = shape_of(a);
  h.data = a.data();
  h.keep = keep_alive(a);
  return h;
}

}  // namespace fg::python
