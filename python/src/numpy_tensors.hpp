// NumPy arrays <-> fg::Tensor and fg::HostArray for the Python module. Inputs are borrowed
// (no copy) when they are C-contiguous, aligned and of the input's dtype, and converted into a
// copy otherwise; outputs become NumPy arrays that hold the tensor's own buffer (no copy).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <fusiongraph/training.hpp>
#include <string>

namespace fg::python {

namespace py = pybind11;

// The tensor a graph input of dtype `dtype` gets from `value` (an ndarray or anything
// np.asarray takes). Float inputs take bool, integer and float arrays; int32 inputs take integer
// and bool arrays, and float arrays whose values are whole numbers in int32's range. fg::Error
// naming `input` for anything else (strings, objects, complex numbers, out-of-range ids).
// `copied`, when given, tells whether the data was copied.
Tensor to_tensor(const std::string& input, py::handle value, DType dtype, bool* copied = nullptr);

// A NumPy array over the tensor's buffer: the array keeps the tensor alive (its base is a
// capsule holding it), so nothing is copied and nothing else shares the buffer. A tensor that
// borrows memory it does not own is copied instead (the array must own what it shows).
py::array to_numpy(Tensor tensor);

// A C-contiguous HostArray over `value` for in-memory training data (np.ascontiguousarray when
// it is not; bool, integer and float dtypes only: fg::Error naming `what` otherwise). The
// HostArray keeps the array alive.
HostArray to_host_array(const std::string& what, py::handle value);

// The numpy dtype of a graph dtype.
py::dtype numpy_dtype(DType dtype);

}  // namespace fg::python
