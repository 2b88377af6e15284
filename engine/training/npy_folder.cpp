// The .npy folder data source (open_npy_folder in engine/training/dataset.hpp): one memory-mapped
// file per graph input and per output with targets, every check made when the folder is opened.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "engine/mapped_file.hpp"
#include "engine/npy.hpp"
#include "engine/training/dataset.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

namespace fs = std::filesystem;

// One mapped file and what it holds.
struct NpyColumn {
  DataField field;
  std::string what;  // "input 'image'" or "targets of output 'classifier'", for messages
  std::shared_ptr<const MappedFile> file;
  NpyHeader header;
  size_t sample_elements = 0;  // elements per sample (row)
};

std::string stored_as(const NpyHeader& h) {
  return fmt::format("'{}' {}", h.descr, format_shape(h.shape));
}

class NpyFolderSource final : public DataSource {
 public:
  NpyFolderSource(std::string dir, std::vector<NpyColumn> columns, size_t inputs, int64_t samples,
                  std::vector<std::string> ignored)
      : dir_(std::move(dir)),
        columns_(std::move(columns)),
        samples_(samples),
        ignored_(std::move(ignored)) {
    for (size_t c = 0; c < columns_.size(); ++c)
      (c < inputs ? inputs_ : targets_).push_back(columns_[c].field);
  }

  int64_t size() const override { return samples_; }
  const std::vector<DataField>& inputs() const override { return inputs_; }
  const std::vector<DataField>& targets() const override { return targets_; }
  std::vector<std::string> ignored() const override { return ignored_; }

  std::string describe() const override {
    std::string out = fmt::format("{}: {} samples\n", dir_, samples_);
    for (const auto& c : columns_)
      out += fmt::format("  {}: {} -> {}\n", fs::path(c.file->path()).filename().string(),
                         stored_as(c.header), c.what);
    for (const auto& name : ignored_) out += fmt::format("  {}: ignored\n", name);
    return out;
  }

  void read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
            int threads) const override;

 private:
  std::string dir_;
  std::vector<NpyColumn> columns_;
  std::vector<DataField> inputs_, targets_;
  int64_t samples_ = 0;
  std::vector<std::string> ignored_;
};

void NpyFolderSource::read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
                           int threads) const {
  std::vector<void*> dst(columns_.size());
  size_t row_bytes = 0;
  for (size_t c = 0; c < columns_.size(); ++c) {
    Tensor& t = c < inputs_.size() ? batch.inputs[c] : batch.targets[c - inputs_.size()];
    dst[c] = t.dtype() == DType::f32 ? static_cast<void*>(t.mutable_data<float>())
                                     : static_cast<void*>(t.mutable_data<int32_t>());
    row_bytes += columns_[c].sample_elements * columns_[c].header.item_size;
  }
  // The first row whose int64 data does not fit into int32, per column (INT64_MAX: none).
  std::vector<int64_t> bad(columns_.size(), std::numeric_limits<int64_t>::max());
  const bool parallel = threads > 1 && count > 1 && row_bytes * count >= (size_t(1) << 16);
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = rows[i] + offset;
    for (size_t c = 0; c < columns_.size(); ++c) {
      const NpyColumn& col = columns_[c];
      const size_t n = col.sample_elements;
      const unsigned char* src = col.file->data() + col.header.data_offset +
                                 static_cast<size_t>(row) * n * col.header.item_size;
      if (col.field.dtype == DType::f32) {
        convert_npy_to_f32(col.header, src, n, static_cast<float*>(dst[c]) + i * n);
      } else if (convert_npy_to_i32(col.header, src, n, static_cast<int32_t*>(dst[c]) + i * n) <
                 n) {
#pragma omp critical(fg_npy_folder_bad_row)
        bad[c] = std::min(bad[c], row);
      }
    }
  }
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (bad[c] == std::numeric_limits<int64_t>::max()) continue;
    throw Error(fmt::format("{}: row {} holds a value that does not fit into int32 (data is "
                            "'<i8')",
                            columns_[c].what, bad[c]))
        .in_file(columns_[c].file->path());
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

// The folder's entries by name (directories get a trailing '/').
std::vector<std::string> folder_entries(const std::string& dir) {
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (ec || !fs::exists(status)) throw Error("the data folder does not exist").in_file(dir);
  if (!fs::is_directory(status))
    throw Error("is not a folder; --data takes a folder of .npy files").in_file(dir);
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    names.push_back(it->path().filename().string() + (it->is_directory(type_ec) ? "/" : ""));
  }
  if (ec) throw Error(fmt::format("cannot list the data folder: {}", ec.message())).in_file(dir);
  std::sort(names.begin(), names.end());
  return names;
}

[[noreturn]] void missing_file(const std::string& dir, const std::string& file,
                               const std::string& what, const std::vector<std::string>& entries) {
  std::vector<std::string> unclaimed;
  for (const auto& e : entries)
    if (e.size() > 4 && e.compare(e.size() - 4, 4, ".npy") == 0) unclaimed.push_back(e);
  constexpr size_t kListed = 20;  // a folder of thousands of files is not listed in full
  std::string holds = entries.empty() ? std::string("nothing") : quoted_list(entries);
  if (entries.size() > kListed) {
    holds = quoted_list(std::vector<std::string>(entries.begin(), entries.begin() + kListed)) +
            fmt::format(" and {} more", entries.size() - kListed);
  }
  Error error(fmt::format("no {} for {}: the folder holds {}", file, what, holds));
  error.in_file(dir);
  const std::string near = closest_match(file, unclaimed);
  if (!near.empty()) error.hint(fmt::format("did you mean '{}'? (rename it to '{}')", near, file));
  throw error;
}

// Maps the file, checks its header and that it holds one or more samples.
NpyColumn map_column(const std::string& path, DataField field, std::string what) {
  NpyColumn col;
  col.what = std::move(what);
  const auto named = [&](const Error& e) {
    Error out(fmt::format("{}: {}", col.what, e.message()));
    out.in_file(path);
    if (!e.hint_text().empty()) out.hint(e.hint_text());
    return out;
  };
  try {
    col.file = MappedFile::open(path);
    col.header = parse_npy_header(col.file->data(), col.file->size());
  } catch (const Error& e) {
    throw named(e);
  }
  const Dims& shape = col.header.shape;
  if (shape.empty())
    throw named(Error("a 0-d array holds no samples; expected one row per sample (first axis)"));
  if (shape[0] == 0) throw named(Error(fmt::format("no samples: shape {}", format_shape(shape))));
  field.source = path;
  field.stored = stored_as(col.header);
  col.field = std::move(field);
  col.sample_elements = shape[0] > 0 ? col.header.elements / static_cast<size_t>(shape[0]) : 0;
  return col;
}

Dims sample_shape_of(const NpyColumn& col) {
  return Dims(col.header.shape.begin() + 1, col.header.shape.end());
}

// An input's dtype and per-sample shape against its declaration (null dims: any size).
void check_input(NpyColumn& col, const InputDef& input) {
  const Dims sample = sample_shape_of(col);
  const auto fail = [&](const std::string& message) {
    return Error(fmt::format("{}: {}", col.what, message)).in_file(col.file->path());
  };
  if (input.dtype == DType::i32 && col.header.kind == 'f') {
    throw fail(fmt::format("the input is int32 but the file holds floating-point '{}'; floats "
                           "are not converted to int32",
                           col.header.descr))
        .hint("save the array as integers, e.g. np.save(path, a.astype(np.int32))");
  }
  bool fits = sample.size() == input.shape.size();
  for (size_t d = 0; fits && d < sample.size(); ++d)
    fits = input.shape[d] == kDynamic || input.shape[d] == sample[d];
  if (!fits) {
    Error e = fail(fmt::format(
        "samples of shape {} (file shape {}) do not fit the input's "
        "declared shape {}",
        format_shape(sample), format_shape(col.header.shape), format_shape(input.shape)));
    Dims with_axis = sample;
    with_axis.push_back(1);
    if (with_axis == input.shape) e.hint("add the trailing axis: np.save(path, a[..., None])");
    throw e;
  }
  for (size_t d = 0; d < sample.size(); ++d)
    if (sample[d] == 0) throw fail(fmt::format("dimension {} of the samples is 0", d + 1));
  col.field.dtype = input.dtype;
  col.field.sample_shape = sample;
}

// Class ids of sparse targets, all in [0, classes): scanned once, naming the first bad row.
void check_class_ids(const NpyColumn& col, int64_t classes) {
  const size_t per_row = col.sample_elements;
  const unsigned char* data = col.file->data() + col.header.data_offset;
  for (size_t i = 0; i < col.header.elements; ++i) {
    int64_t id;
    if (col.header.item_size == 4) {
      int32_t v;
      std::memcpy(&v, data + 4 * i, 4);
      id = v;
    } else {
      std::memcpy(&id, data + 8 * i, 8);
    }
    if (id >= 0 && id < classes) continue;
    const std::string where = per_row > 1 ? fmt::format(" (position {})", i % per_row) : "";
    throw Error(fmt::format("{}: row {}{} holds class id {}, outside [0, {}): the output has {} "
                            "classes",
                            col.what, i / per_row, where, id, classes, classes))
        .in_file(col.file->path());
  }
}

// Targets against the output's concrete type. Sparse (class ids): ints of the output's shape
// without its class axis, or with a class axis of 1 (Keras squeezes it). Dense: the output's
// shape, or that shape without a trailing 1 (Keras expands it); ints and f64 convert to f32.
void check_target(NpyColumn& col, const TensorType& output, bool sparse) {
  const Dims sample = sample_shape_of(col);
  const Dims out(output.shape.begin() + 1, output.shape.end());
  Dims shown = output.shape;  // bound with a batch of 1; messages show the batch as None
  shown[0] = kDynamic;
  const auto fail = [&](const std::string& message) {
    return Error(fmt::format("{}: {}", col.what, message)).in_file(col.file->path());
  };
  Dims out_last_dropped = out;
  if (!out_last_dropped.empty()) out_last_dropped.pop_back();
  if (sparse) {
    if (col.header.kind == 'f') {
      throw fail(fmt::format("sparse targets are int class ids, but the file holds "
                             "floating-point '{}'",
                             col.header.descr))
          .hint("save the ids as integers: np.save(path, ids.astype(np.int32))");
    }
    Dims with_one = out_last_dropped;
    with_one.push_back(1);
    if (sample != out_last_dropped && sample != with_one) {
      throw fail(
          fmt::format("class ids of shape {} per sample (file shape {}) do not fit the "
                      "output {}: expected {} or {}",
                      format_shape(sample), format_shape(col.header.shape), format_shape(shown),
                      format_shape(out_last_dropped), format_shape(with_one)));
    }
    check_class_ids(col, out.empty() ? 0 : out.back());
    col.field.dtype = DType::i32;
    col.field.sparse = true;
    col.field.sample_shape = sample;
    return;
  }
  const bool squeezed = !out.empty() && out.back() == 1 && sample == out_last_dropped;
  if (sample != out && !squeezed) {
    Error e =
        fail(fmt::format("targets of shape {} per sample (file shape {}) do not fit the "
                         "output {}: expected {}",
                         format_shape(sample), format_shape(col.header.shape), format_shape(shown),
                         format_shape(out)));
    if (col.header.kind == 'i' && sample == out_last_dropped)
      e.hint(
          "these look like class ids: use sparse_categorical_crossentropy, or one-hot "
          "targets (np.eye(classes)[ids])");
    throw e;
  }
  col.field.dtype = DType::f32;
  col.field.sample_shape = out;
}

// Every file holds the same number of samples as the first.
void check_lengths(const std::vector<NpyColumn>& columns) {
  const NpyColumn& first = columns.front();
  for (const auto& c : columns) {
    if (c.header.shape[0] == first.header.shape[0]) continue;
    throw Error(fmt::format("{} holds {} samples but {} holds {} ({} vs {}); every file needs one "
                            "row per sample",
                            fs::path(first.file->path()).filename().string(), first.header.shape[0],
                            fs::path(c.file->path()).filename().string(), c.header.shape[0],
                            first.what, c.what))
        .in_file(c.file->path());
  }
}

// The graph's tensor types for these inputs (fg::Error when the sizes of null dims do not fit).
std::vector<TensorType> bind_inputs(const std::string& dir, const CompiledGraph& graph,
                                    const std::vector<NpyColumn>& inputs) {
  std::vector<Dims> shapes;
  std::vector<std::string> described;
  for (const auto& c : inputs) {
    Dims d = {1};
    d.insert(d.end(), c.field.sample_shape.begin(), c.field.sample_shape.end());
    shapes.push_back(d);
    described.push_back(fmt::format("{} {}", c.field.name, format_shape(c.field.sample_shape)));
  }
  try {
    return graph.bind(shapes);
  } catch (const Error& e) {
    throw Error(fmt::format("the samples' shapes ({}) do not fit the graph: {}",
                            fmt::join(described, ", "), e.what()))
        .in_file(dir);
  }
}

// Whether an output's targets are class ids: its loss says so; without a loss (metrics only),
// the file's integer dtype does.
bool sparse_targets(const OutputTraining& o, const NpyHeader& header) {
  if (o.loss) return o.loss->kind == LossKind::sparse_categorical_crossentropy;
  return header.kind == 'i';
}

}  // namespace

Dataset open_npy_folder(const std::string& dir, const CompiledGraph& graph,
                        const std::vector<OutputTraining>& outputs, const DatasetOptions& options) {
  const std::vector<std::string> entries = folder_entries(dir);
  std::set<std::string> used;
  std::vector<NpyColumn> columns;
  for (const auto& input : graph.def().inputs) {
    const std::string file = input.name + ".npy";
    const std::string what = fmt::format("input '{}'", input.name);
    if (!std::binary_search(entries.begin(), entries.end(), file))
      missing_file(dir, file, what, entries);
    DataField field;
    field.name = input.name;
    columns.push_back(map_column((fs::path(dir) / file).string(), field, what));
    check_input(columns.back(), input);
    used.insert(file);
  }
  const size_t input_count = columns.size();
  std::vector<const OutputTraining*> trained;
  for (const auto& o : outputs) {
    if (!options.targets || (!o.loss && o.metrics.empty())) continue;
    const std::string file = o.output + ".npy";
    const std::string what = fmt::format("targets of output '{}'", o.output);
    if (used.count(file)) {
      throw Error(fmt::format("output '{}' has the name of a graph input: its targets and the "
                              "input would both be {}",
                              o.output, file))
          .in_file(dir);
    }
    if (!std::binary_search(entries.begin(), entries.end(), file))
      missing_file(dir, file, what, entries);
    DataField field;
    field.name = o.output;
    field.target = true;
    columns.push_back(map_column((fs::path(dir) / file).string(), field, what));
    trained.push_back(&o);
    used.insert(file);
  }
  if (columns.empty()) throw Error("the graph has no inputs to read").in_file(dir);
  check_lengths(columns);
  const std::vector<TensorType> types = bind_inputs(
      dir, graph, std::vector<NpyColumn>(columns.begin(), columns.begin() + input_count));
  for (size_t t = 0; t < trained.size(); ++t) {
    NpyColumn& col = columns[input_count + t];
    check_target(col, types.at(trained[t]->tensor), sparse_targets(*trained[t], col.header));
  }
  std::vector<std::string> ignored;
  for (const auto& e : entries)
    if (!used.count(e)) ignored.push_back(e);
  const int64_t samples = columns.front().header.shape[0];
  return Dataset(std::make_shared<NpyFolderSource>(dir, std::move(columns), input_count, samples,
                                                   std::move(ignored)));
}

}  // namespace fg
