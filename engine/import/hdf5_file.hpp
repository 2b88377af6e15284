// A read-only view of an HDF5 file through the HDF5 C library (libhdf5-dev, 1.10): the groups,
// string attributes and float datasets a Keras file holds. The library's automatic error
// printing is turned off; every failure is an fg::Error naming the file, the object path and
// the HDF5 library's own innermost message. Nothing here knows Keras.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"

namespace fg {

// Upper bounds on what we read from an (untrusted) file: a dataset or attribute larger than
// this is an error before anything is allocated.
constexpr uint64_t kMaxHdf5DatasetBytes = uint64_t{1} << 32;     // 4 GiB
constexpr uint64_t kMaxHdf5AttributeBytes = uint64_t{64} << 20;  // 64 MiB (model configs)

class Hdf5File {
 public:
  // Opens `path` read-only. Not an HDF5 file (or truncated so that its superblock is
  // unreadable): an fg::Error saying so.
  explicit Hdf5File(const std::string& path);
  // An HDF5 file held in memory (e.g. model.weights.h5 inside a .keras zip); `name` for messages.
  Hdf5File(const std::string& name, const std::vector<unsigned char>& image);
  ~Hdf5File();
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  const std::string& path() const { return path_; }

  // "/" or "model_weights/dense" (relative to the root).
  bool has_group(const std::string& path) const;
  bool has_dataset(const std::string& path) const;
  bool has_attribute(const std::string& object, const std::string& name) const;
  // Names of the links in a group, in name order.
  std::vector<std::string> children(const std::string& group) const;
  // A string attribute (fixed or variable length, scalar or one-element); nullopt if absent.
  std::optional<std::string> string_attribute(const std::string& object,
                                              const std::string& name) const;
  // A string-array attribute (Keras's layer_names / weight_names); empty when absent.
  std::vector<std::string> string_list_attribute(const std::string& object,
                                                 const std::string& name) const;
  // A numeric dataset converted to float32 (floats and integers of any width), with its shape.
  Tensor float_dataset(const std::string& path) const;

 private:
  std::string path_;
  int64_t file_ = -1;  // hid_t
};

}  // namespace fg
