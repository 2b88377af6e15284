// Reading and writing safetensors files (see docs/formats.md for the subset we accept).
//   8 bytes   little-endian u64 N: the header length
//   N bytes   JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                    "__metadata__": {"key": "value", ...}}
//   rest      the data section; offsets are relative to its start
// Every tensor comes back as f32: F32 data is borrowed from the file's contents, read once into
// owned memory, when 4-byte aligned (the tensor keeps the contents alive), otherwise copied;
// F16 and BF16 are converted. The file is not read again after read_safetensors returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kernels/tensor.hpp"

namespace fg {

class FileContents;

struct SafetensorsContents {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__" (string values only)
  std::shared_ptr<const FileContents> file;     // the bytes borrowed tensors point into
};

// Throws fg::Error naming the file (and the tensor) on any problem; never reads out of bounds.
SafetensorsContents read_safetensors(const std::string& path);

// Writes f32 tensors as F32 with keys in sorted order, atomically (temp file + rename).
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// IEEE 754 binary16 and bfloat16 bit patterns to float (exact; NaN, inf, subnormals kept).
float half_to_float(uint16_t bits);
float bfloat16_to_float(uint16_t bits);

// Upper bound on the JSON header length we accept.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

}  // namespace fg
