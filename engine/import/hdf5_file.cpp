#include "engine/import/hdf5_file.hpp"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "framework/error.hpp"

namespace fg {
namespace {

// The innermost (most specific) message of the library's current error stack.
std::string hdf5_message() {
  std::string message;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        if (e->desc && *e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &message);
  H5Eclear2(H5E_DEFAULT);
  return message;
}

Error hdf5_error(const std::string& file, const std::string& message) {
  std::string detail = hdf5_message();
  Error e(detail.empty() ? message : fmt::format("{} (HDF5: {})", message, detail));
  e.in_file(file);
  return e;
}

// Closes an HDF5 handle with the given function when it goes out of scope.
struct Handle {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Handle() {
    if (id >= 0) close(id);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

void silence_hdf5() {
  static const bool done = [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// Whether every link along "a/b/c" exists (H5Lexists needs each parent to exist).
bool link_exists(hid_t file, const std::string& path) {
  if (path.empty() || path == "/") return true;
  size_t pos = 0;
  while (true) {
    const size_t slash = path.find('/', pos);
    const std::string prefix = path.substr(0, slash);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

H5O_type_t object_type(hid_t file, const std::string& path) {
  if (!link_exists(file, path)) return H5O_TYPE_UNKNOWN;
  H5O_info_t info;
  if (H5Oget_info_by_name2(file, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5O_TYPE_UNKNOWN;
  }
  return info.type;
}

// Reads a string attribute's values (fixed or variable length).
std::vector<std::string> read_strings(hid_t attr, const std::string& file,
                                      const std::string& what) {
  Handle type(H5Aget_type(attr), H5Tclose);
  Handle space(H5Aget_space(attr), H5Sclose);
  if (type.id < 0 || space.id < 0) throw hdf5_error(file, fmt::format("cannot read {}", what));
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  if (n == 0) return {};  // h5py writes an empty list as an empty float array
  if (H5Tget_class(type.id) != H5T_STRING)
    throw Error(fmt::format("{} is not a string", what)).in_file(file);
  const size_t size = H5Tget_size(type.id);
  if (n < 0 || static_cast<uint64_t>(n) * std::max<size_t>(size, 8) > kMaxHdf5AttributeBytes)
    throw Error(fmt::format("{} is too large", what)).in_file(file);
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.id) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    std::vector<char*> buf(static_cast<size_t>(n), nullptr);
    if (H5Aread(attr, mem.id, buf.data()) < 0)
      throw hdf5_error(file, fmt::format("cannot read {}", what));
    for (char* s : buf) out.emplace_back(s ? s : "");
    H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, buf.data());
    return out;
  }
  std::vector<char> buf(static_cast<size_t>(n) * size + 1, 0);
  if (H5Aread(attr, type.id, buf.data()) < 0)
    throw hdf5_error(file, fmt::format("cannot read {}", what));
  for (hssize_t i = 0; i < n; ++i) {
    const char* s = buf.data() + i * size;
    out.emplace_back(s, strnlen(s, size));
  }
  return out;
}

}  // namespace

Hdf5File::Hdf5File(const std::string& path) : path_(path) {
  silence_hdf5();
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(is_hdf5 == 0 ? "not an HDF5 file (no HDF5 signature)"
                             : "cannot open the file as HDF5")
        .in_file(path)
        .hint("legacy Keras models are HDF5 files written by model.save('model.h5')");
  }
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) throw hdf5_error(path, "cannot open the HDF5 file (truncated or corrupt?)");
}

Hdf5File::Hdf5File(const std::string& name, const std::vector<unsigned char>& image) : path_(name) {
  silence_hdf5();
  if (image.size() < 8 || std::memcmp(image.data(), "\x89HDF\r\n\x1a\n", 8) != 0)
    throw Error("not an HDF5 file (no HDF5 signature)").in_file(name);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (fapl.id < 0 || H5Pset_fapl_core(fapl.id, 1 << 16, 0) < 0 ||
      H5Pset_file_image(fapl.id, const_cast<unsigned char*>(image.data()), image.size()) < 0)
    throw hdf5_error(name, "cannot prepare the in-memory HDF5 file");
  file_ = H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.id);
  if (file_ < 0) throw hdf5_error(name, "cannot open the HDF5 file (truncated or corrupt?)");
}

Hdf5File::~Hdf5File() {
  if (file_ >= 0) H5Fclose(file_);
}

bool Hdf5File::has_group(const std::string& path) const {
  return path.empty() || path == "/" || object_type(file_, path) == H5O_TYPE_GROUP;
}

bool Hdf5File::has_dataset(const std::string& path) const {
  return object_type(file_, path) == H5O_TYPE_DATASET;
}

bool Hdf5File::has_attribute(const std::string& object, const std::string& name) const {
  if (object_type(file_, object.empty() ? "/" : object) == H5O_TYPE_UNKNOWN && !object.empty() &&
      object != "/")
    return false;
  const htri_t r =
      H5Aexists_by_name(file_, object.empty() ? "/" : object.c_str(), name.c_str(), H5P_DEFAULT);
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::vector<std::string> Hdf5File::children(const std::string& group) const {
  std::vector<std::string> names;
  if (!has_group(group)) return names;
  Handle g(H5Gopen2(file_, group.empty() ? "/" : group.c_str(), H5P_DEFAULT), H5Gclose);
  if (g.id < 0) throw hdf5_error(path_, fmt::format("cannot open the group '{}'", group));
  H5G_info_t info;
  if (H5Gget_info(g.id, &info) < 0)
    throw hdf5_error(path_, fmt::format("cannot read the group '{}'", group));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw hdf5_error(path_, fmt::format("cannot list the group '{}'", group));
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(name);
  }
  return names;
}

std::optional<std::string> Hdf5File::string_attribute(const std::string& object,
                                                      const std::string& name) const {
  if (!has_attribute(object, name)) return std::nullopt;
  const std::string what = fmt::format("the attribute '{}' of '{}'", name, object);
  Handle a(H5Aopen_by_name(file_, object.empty() ? "/" : object.c_str(), name.c_str(), H5P_DEFAULT,
                           H5P_DEFAULT),
           H5Aclose);
  if (a.id < 0) throw hdf5_error(path_, fmt::format("cannot open {}", what));
  std::vector<std::string> values = read_strings(a.id, path_, what);
  if (values.size() != 1)
    throw Error(fmt::format("{} holds {} strings, expected one", what, values.size()))
        .in_file(path_);
  return values[0];
}

std::vector<std::string> Hdf5File::string_list_attribute(const std::string& object,
                                                         const std::string& name) const {
  if (!has_attribute(object, name)) return {};
  const std::string what = fmt::format("the attribute '{}' of '{}'", name, object);
  Handle a(H5Aopen_by_name(file_, object.empty() ? "/" : object.c_str(), name.c_str(), H5P_DEFAULT,
                           H5P_DEFAULT),
           H5Aclose);
  if (a.id < 0) throw hdf5_error(path_, fmt::format("cannot open {}", what));
  return read_strings(a.id, path_, what);
}

Tensor Hdf5File::float_dataset(const std::string& path) const {
  if (!has_dataset(path)) throw Error(fmt::format("no dataset '{}'", path)).in_file(path_);
  Handle d(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (d.id < 0) throw hdf5_error(path_, fmt::format("cannot open the dataset '{}'", path));
  Handle type(H5Dget_type(d.id), H5Tclose);
  Handle space(H5Dget_space(d.id), H5Sclose);
  const H5T_class_t cls = H5Tget_class(type.id);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw Error(fmt::format("the dataset '{}' is not numeric", path)).in_file(path_);
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 0 || rank > 8)
    throw hdf5_error(path_, fmt::format("the dataset '{}' has an unreadable shape", path));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  Dims shape;
  uint64_t count = 1;
  for (hsize_t v : dims) {
    if (v > kMaxHdf5DatasetBytes || (count *= v) > kMaxHdf5DatasetBytes / 4)
      throw Error(fmt::format("the dataset '{}' is too large", path)).in_file(path_);
    shape.push_back(static_cast<int64_t>(v));
  }
  Tensor t(DType::f32, shape);
  if (t.size() > 0 &&
      H5Dread(d.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.mutable_data<float>()) < 0)
    throw hdf5_error(path_, fmt::format("cannot read the dataset '{}' (truncated file?)", path));
  return t;
}

}  // namespace fg
