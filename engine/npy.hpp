// NumPy .npy files (see docs/formats.md for the subset we accept).
//   "\x93NUMPY", major, minor (1.0, 2.0 or 3.0), header length (u16 for 1.0, u32 otherwise),
//   a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded
//   with spaces and ended by '\n', then the raw C-order data.
#pragma once

#include <string>

#include "kernels/tensor.hpp"

namespace fg {

// Reads an .npy file and converts it to `want`: '<f4', '<f8', '<i4', '<i8' data are accepted;
// ints convert to f32, f64 rounds to f32, i64 -> i32 is range-checked, floats never become
// int32. Throws fg::Error naming the file (and `input_name`, the graph input, when given).
Tensor read_npy(const std::string& path, DType want, const std::string& input_name = "");

// Writes a format 1.0 file ('<f4' or '<i4', C order) atomically (temp file + rename).
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace fg
