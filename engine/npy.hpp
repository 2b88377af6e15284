// NumPy .npy files (see docs/formats.md for the subset we accept).
//   "\x93NUMPY", major, minor (1.0, 2.0 or 3.0), header length (u16 for 1.0, u32 otherwise),
//   a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded
//   with spaces and ended by '\n', then the raw C-order data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/tensor.hpp"

namespace fg {

// What an .npy header says, once checked (see parse_npy_header).
struct NpyHeader {
  std::string descr;  // '<f4', '<f8', '<i4' or '<i8' ('=' for the native order is accepted)
  char kind = 'f';    // 'f' floating point, 'i' signed integer
  size_t item_size = 4;
  Dims shape;
  size_t data_offset = 0;  // where the raw C-order data starts, from the start of the file
  size_t elements = 0;     // the shape's element count
};

// Parses and checks the preamble and header of an .npy file whose `size` bytes start at `data`:
// the magic, version, dict, C order, a supported little-endian dtype, and that the data region
// holds exactly the shape's elements. Reads only the preamble and header bytes (a memory-mapped
// file's data is not touched). Throws fg::Error with the reason; callers add the file name.
NpyHeader parse_npy_header(const unsigned char* data, size_t size);
// The header an .npy file of this dtype and shape would have (data_offset 0), for arrays that
// are already in memory: the same dtype checks and messages as parse_npy_header, plus
// non-negative dims whose element count fits. Throws fg::Error; callers name the array.
NpyHeader npy_header_for(const std::string& descr, const Dims& shape);

// Converts `n` elements of the header's dtype at `src` to float32: f64 rounds, ints convert.
void convert_npy_to_f32(const NpyHeader& header, const unsigned char* src, size_t n, float* dst);
// Converts `n` integer elements to int32. Returns n, or the index of the first '<i8' value that
// does not fit (dst is written up to it). Throws fg::Error for floating-point data.
size_t convert_npy_to_i32(const NpyHeader& header, const unsigned char* src, size_t n,
                          int32_t* dst);

// Reads an .npy file and converts it to `want`: '<f4', '<f8', '<i4', '<i8' data are accepted;
// ints convert to f32, f64 rounds to f32, i64 -> i32 is range-checked, floats never become
// int32. Throws fg::Error naming the file (and `input_name`, the graph input, when given).
Tensor read_npy(const std::string& path, DType want, const std::string& input_name = "");

// Writes a format 1.0 file ('<f4' or '<i4', C order) atomically (temp file + rename).
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace fg
