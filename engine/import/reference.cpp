#include "engine/import/reference.hpp"

#include <fmt/format.h>
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "engine/import/hdf5_file.hpp"
#include "engine/npy.hpp"
#include "framework/error.hpp"

namespace fg {
namespace {

constexpr uint64_t kMaxNpzEntryBytes = uint64_t{4} << 30;

Tensor npy_bytes_to_tensor(const unsigned char* data, size_t size) {
  const NpyHeader h = parse_npy_header(data, size);
  Tensor t(DType::f32, h.shape);
  convert_npy_to_f32(h, data + h.data_offset, h.elements, t.mutable_data<float>());
  return t;
}

std::map<std::string, Tensor> read_npz(const std::string& path) {
  int err = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY, &err),
                                                         zip_discard);
  if (!archive) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    Error e(fmt::format("cannot read the .npz archive: {}", zip_error_strerror(&ze)));
    zip_error_fini(&ze);
    throw e.in_file(path);
  }
  std::map<std::string, Tensor> out;
  const zip_int64_t n = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(archive.get(), i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
        !(st.valid & ZIP_STAT_NAME))
      throw Error(fmt::format("cannot read entry {} of the archive", i)).in_file(path);
    std::string name = st.name;
    if (name.size() < 4 || name.substr(name.size() - 4) != ".npy") continue;
    if (st.size > kMaxNpzEntryBytes)
      throw Error(fmt::format("the entry '{}' is too large", name)).in_file(path);
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen_index(archive.get(), i, 0),
                                                         zip_fclose);
    if (!f)
      throw Error(fmt::format("cannot open the entry '{}': {}", name, zip_strerror(archive.get())))
          .in_file(path);
    std::vector<unsigned char> bytes(static_cast<size_t>(st.size));
    const zip_int64_t got = zip_fread(f.get(), bytes.data(), bytes.size());
    if (got != static_cast<zip_int64_t>(bytes.size()))
      throw Error(fmt::format("the entry '{}' is truncated or corrupt", name)).in_file(path);
    try {
      out[name.substr(0, name.size() - 4)] = npy_bytes_to_tensor(bytes.data(), bytes.size());
    } catch (Error& e) {
      throw Error(fmt::format("entry '{}': {}", name, e.message())).in_file(path);
    }
  }
  return out;
}

std::map<std::string, Tensor> read_npy_folder(const std::string& path) {
  std::map<std::string, Tensor> out;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() != ".npy") continue;
    out[entry.path().stem().string()] = read_npy(entry.path().string(), DType::f32);
  }
  return out;
}

void read_group(const Hdf5File& h5, const std::string& group, std::map<std::string, Tensor>& into) {
  for (const std::string& name : h5.children(group))
    if (!into.count(name) && h5.has_dataset(group + "/" + name))
      into[name] = h5.float_dataset(group + "/" + name);
}

bool starts_with_bytes(const std::string& path, const char* magic, size_t n) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open the file").in_file(path);
  std::string head(n, '\0');
  const size_t got = std::fread(head.data(), 1, n, f);
  std::fclose(f);
  return got == n && head.compare(0, n, magic, n) == 0;
}

VerifyRow compare(const std::string& node, const Tensor& got, const Tensor& want,
                  const VerifyTolerance& tol) {
  VerifyRow row;
  row.node = node;
  row.shape = got.shape();
  if (got.shape() != want.shape()) {
    row.ok = false;
    row.problem = fmt::format("shape {} vs the reference's {}", format_shape(got.shape()),
                              format_shape(want.shape()));
    return row;
  }
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(g[i]) - w[i]);
    if (!(d <= tol.atol + tol.rtol * std::fabs(w[i]))) row.ok = false;  // NaN fails too
    if (std::isnan(d)) {
      row.max_abs = d;
      continue;
    }
    row.max_abs = std::max(row.max_abs, d);
    if (std::fabs(w[i]) >= tol.atol) row.max_rel = std::max(row.max_rel, d / std::fabs(w[i]));
  }
  return row;
}

// The references are read as float32; an int32 input (Embedding ids, which Keras is often fed
// as floats) takes them when every value is a whole number.
Tensor integer_ids(const Tensor& t, const std::string& input, const std::string& source) {
  Tensor ids(DType::i32, t.shape());
  for (size_t i = 0; i < t.size(); ++i) {
    const float v = t.data<float>()[i];
    if (v != std::nearbyint(v) || std::fabs(v) > 2147483647.f)
      throw Error(fmt::format("the reference input for the int32 input '{}' holds {} at element "
                              "{}, which is not an integer id",
                              input, v, i))
          .in_file(source);
    ids.mutable_data<int32_t>()[i] = static_cast<int32_t>(v);
  }
  return ids;
}

// Moves the reference arrays that feed the graph into `inputs`, by name (or the single one).
std::map<std::string, Tensor> bind_inputs(const CompiledGraph& graph, ReferenceSet& ref,
                                          VerifyReport& report) {
  std::map<std::string, Tensor> feed;
  const auto& inputs = graph.def().inputs;
  for (const InputDef& in : inputs) {
    if (auto it = ref.inputs.find(in.name); it != ref.inputs.end()) {
      feed[in.name] = it->second;
      ref.inputs.erase(it);
    } else if (auto a = ref.activations.find(in.name); a != ref.activations.end()) {
      feed[in.name] = a->second;
      ref.activations.erase(a);
    }
  }
  if (inputs.size() == 1 && feed.empty() && ref.inputs.size() == 1) {
    report.notes.push_back(fmt::format("input '{}' takes the reference input '{}'", inputs[0].name,
                                       ref.inputs.begin()->first));
    feed[inputs[0].name] = ref.inputs.begin()->second;
    ref.inputs.clear();
  }
  for (const InputDef& in : inputs)
    if (!feed.count(in.name))
      throw Error(fmt::format("the reference has no array for the graph input '{}'", in.name))
          .in_file(ref.source)
          .hint(fmt::format("name it {}.npy (or the key '{}' in the .npz)", in.name, in.name));
  for (const InputDef& in : inputs)
    if (in.dtype == DType::i32 && feed.at(in.name).dtype() == DType::f32)
      feed[in.name] = integer_ids(feed.at(in.name), in.name, ref.source);
  for (const auto& [name, t] : ref.inputs) report.unused.push_back(name);
  return feed;
}

}  // namespace

ReferenceSet read_reference(const std::string& path) {
  ReferenceSet ref;
  ref.source = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    ref.activations = read_npy_folder(path);
  } else if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error("no such file or folder").in_file(path);
  } else if (starts_with_bytes(path, "PK", 2)) {
    ref.activations = read_npz(path);
  } else {
    const Hdf5File h5(path);
    read_group(h5, "inputs", ref.inputs);
    read_group(h5, "activations", ref.activations);
    read_group(h5, "predictions", ref.activations);
    // (outputs/ in the Keras fixtures holds the training targets, not what the model computed)
    if (ref.inputs.empty())
      throw Error("the HDF5 reference has no inputs/ group of arrays").in_file(path);
  }
  if (ref.activations.empty() && ref.inputs.empty())
    throw Error("the reference holds no arrays").in_file(path);
  return ref;
}

VerifyReport verify_against_reference(const Model& model, ReferenceSet ref,
                                      const VerifyTolerance& tolerance) {
  VerifyReport report;
  const CompiledGraph& graph = model.graph();
  const std::map<std::string, Tensor> feed = bind_inputs(graph, ref, report);
  std::map<std::string, Tensor> intermediates;
  RunOptions options;
  options.intermediates = &intermediates;
  const auto outputs = model.run(feed, options);
  for (const auto& [name, t] : outputs) intermediates.emplace(name, t);
  for (const CompiledNode& node : graph.nodes()) {
    const std::string& name = node.def->name;
    auto want = ref.activations.find(name);
    auto got = intermediates.find(name);
    if (want == ref.activations.end() || got == intermediates.end()) {
      report.not_compared.push_back(name);
      continue;
    }
    report.rows.push_back(compare(name, got->second, want->second, tolerance));
    if (!report.rows.back().ok && report.first_divergence.empty()) report.first_divergence = name;
    ref.activations.erase(want);
  }
  for (const auto& [name, t] : ref.activations) report.unused.push_back(name);
  if (report.rows.empty())
    throw Error("no node of the graph has a reference array of its name")
        .in_file(ref.source)
        .hint("name the arrays after the nodes (Keras layer names for imported models)");
  return report;
}

}  // namespace fg
