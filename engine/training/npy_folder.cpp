// The .npy data sources (engine/training/dataset.hpp): a folder of memory-mapped .npy files
// (open_npy_folder) and arrays already in memory (open_array_data), one code for both. A column
// is a dtype and shape as an .npy header says them, a pointer to the first element and what keeps
// the data alive; every check is made when the data set is opened.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fusiongraph/training.hpp>
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

// One column of samples (a graph input, or the targets of an output), from a mapped file or an
// array in memory.
struct NpyColumn {
  DataField field;
  std::string what;    // "input 'image'" or "targets of output 'classifier'"
  std::string file;    // the .npy file; "" for an array in memory
  std::string arrays;  // an array in memory: the name of its ArrayData ("arrays")
  std::string label;   // names the column in a listing: the file name, or `what`
  NpyHeader header;    // dtype and shape (data_offset is not used: `data` points at the data)
  const unsigned char* data = nullptr;  // the first element
  std::shared_ptr<const void> keep;     // keeps `data` alive
  size_t sample_elements = 0;           // elements per sample (row)

  bool in_memory() const { return file.empty(); }
  // An error about this column: its name first ("arrays: input 'x': ..."), in its file.
  Error error(const std::string& message) const {
    if (in_memory()) return Error(fmt::format("{}: {}: {}", arrays, what, message));
    return Error(fmt::format("{}: {}", what, message)).in_file(file);
  }
  // How the user fixes the data, as NumPy code: np.save for a file, the expression for an array.
  std::string numpy_fix(const std::string& expression) const {
    return in_memory() ? expression : fmt::format("np.save(path, {})", expression);
  }
};

// A problem of the data set as a whole (named by its folder, or by the arrays' name).
using DataError = std::function<Error(const std::string&)>;

std::string stored_as(const NpyHeader& h) {
  return fmt::format("'{}' {}", h.descr, format_shape(h.shape));
}

class NpySource final : public DataSource {
 public:
  NpySource(std::string name, std::vector<NpyColumn> columns, size_t inputs, int64_t samples,
            std::vector<std::string> ignored)
      : name_(std::move(name)),
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
    std::string out = fmt::format("{}: {} samples\n", name_, samples_);
    for (const auto& c : columns_)
      out += fmt::format("  {}: {} -> {}\n", c.label, stored_as(c.header), c.what);
    for (const auto& name : ignored_) out += fmt::format("  {}: ignored\n", name);
    return out;
  }

  void read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
            int threads) const override;

 private:
  std::string name_;
  std::vector<NpyColumn> columns_;
  std::vector<DataField> inputs_, targets_;
  int64_t samples_ = 0;
  std::vector<std::string> ignored_;
};

void NpySource::read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
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
      const unsigned char* src = col.data + static_cast<size_t>(row) * n * col.header.item_size;
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
    throw columns_[c].error(
        fmt::format("row {} holds a value that does not fit into int32 (data is '<i8')", bad[c]));
  }
}

// ---------------------------------------------------------------------------------------------
// Checks, the same for files and arrays

// The column's header checked for samples; the field's source and dtype as stored.
void finish_column(NpyColumn& col, DataField field, const std::string& source) {
  const Dims& shape = col.header.shape;
  if (shape.empty())
    throw col.error("a 0-d array holds no samples; expected one row per sample (first axis)");
  if (shape[0] == 0) throw col.error(fmt::format("no samples: shape {}", format_shape(shape)));
  field.source = source;
  field.stored = stored_as(col.header);
  col.field = std::move(field);
  col.sample_elements = col.header.elements / static_cast<size_t>(shape[0]);
}

Dims sample_shape_of(const NpyColumn& col) {
  return Dims(col.header.shape.begin() + 1, col.header.shape.end());
}

// An input's dtype and per-sample shape against its declaration (null dims: any size).
void check_input(NpyColumn& col, const InputDef& input) {
  const Dims sample = sample_shape_of(col);
  const char* holds = col.in_memory() ? "array" : "file";
  if (input.dtype == DType::i32 && col.header.kind == 'f') {
    throw col
        .error(fmt::format("the input is int32 but the {} holds floating-point '{}'; floats "
                           "are not converted to int32",
                           holds, col.header.descr))
        .hint(fmt::format("{} the array as integers, e.g. {}", col.in_memory() ? "pass" : "save",
                          col.numpy_fix("a.astype(np.int32)")));
  }
  bool fits = sample.size() == input.shape.size();
  for (size_t d = 0; fits && d < sample.size(); ++d)
    fits = input.shape[d] == kDynamic || input.shape[d] == sample[d];
  if (!fits) {
    Error e = col.error(fmt::format(
        "samples of shape {} ({} shape {}) do not fit the input's declared shape {}",
        format_shape(sample), holds, format_shape(col.header.shape), format_shape(input.shape)));
    Dims with_axis = sample;
    with_axis.push_back(1);
    if (with_axis == input.shape)
      e.hint(fmt::format("add the trailing axis: {}", col.numpy_fix("a[..., None]")));
    throw e;
  }
  for (size_t d = 0; d < sample.size(); ++d)
    if (sample[d] == 0) throw col.error(fmt::format("dimension {} of the samples is 0", d + 1));
  col.field.dtype = input.dtype;
  col.field.sample_shape = sample;
}

// Class ids of sparse targets, all in [0, classes): scanned once, naming the first bad row.
void check_class_ids(const NpyColumn& col, int64_t classes) {
  const size_t per_row = col.sample_elements;
  for (size_t i = 0; i < col.header.elements; ++i) {
    int64_t id;
    if (col.header.item_size == 4) {
      int32_t v;
      std::memcpy(&v, col.data + 4 * i, 4);
      id = v;
    } else {
      std::memcpy(&id, col.data + 8 * i, 8);
    }
    if (id >= 0 && id < classes) continue;
    const std::string where = per_row > 1 ? fmt::format(" (position {})", i % per_row) : "";
    throw col.error(
        fmt::format("row {}{} holds class id {}, outside [0, {}): the output has {} "
                    "classes",
                    i / per_row, where, id, classes, classes));
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
  const char* holds = col.in_memory() ? "array" : "file";
  Dims out_last_dropped = out;
  if (!out_last_dropped.empty()) out_last_dropped.pop_back();
  if (sparse) {
    if (col.header.kind == 'f') {
      throw col
          .error(fmt::format("sparse targets are int class ids, but the {} holds "
                             "floating-point '{}'",
                             holds, col.header.descr))
          .hint(fmt::format("{} the ids as integers: {}", col.in_memory() ? "pass" : "save",
                            col.numpy_fix("ids.astype(np.int32)")));
    }
    Dims with_one = out_last_dropped;
    with_one.push_back(1);
    if (sample != out_last_dropped && sample != with_one) {
      throw col.error(
          fmt::format("class ids of shape {} per sample ({} shape {}) do not fit the "
                      "output {}: expected {} or {}",
                      format_shape(sample), holds, format_shape(col.header.shape),
                      format_shape(shown), format_shape(out_last_dropped), format_shape(with_one)));
    }
    check_class_ids(col, out.empty() ? 0 : out.back());
    col.field.dtype = DType::i32;
    col.field.sparse = true;
    col.field.sample_shape = sample;
    return;
  }
  const bool squeezed = !out.empty() && out.back() == 1 && sample == out_last_dropped;
  if (sample != out && !squeezed) {
    Error e = col.error(fmt::format(
        "targets of shape {} per sample ({} shape {}) do not fit the output {}: expected {}",
        format_shape(sample), holds, format_shape(col.header.shape), format_shape(shown),
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

// Every column holds the same number of samples as the first.
void check_lengths(const std::vector<NpyColumn>& columns) {
  const NpyColumn& first = columns.front();
  for (const auto& c : columns) {
    const int64_t n = c.header.shape[0], want = first.header.shape[0];
    if (n == want) continue;
    if (c.in_memory()) {
      throw Error(
          fmt::format("{}: {} holds {} samples but {} holds {}; every array needs one row "
                      "per sample (the first axis)",
                      c.arrays, first.what, want, c.what, n));
    }
    throw Error(fmt::format("{} holds {} samples but {} holds {} ({} vs {}); every file needs one "
                            "row per sample",
                            first.label, want, c.label, n, first.what, c.what))
        .in_file(c.file);
  }
}

// The graph's tensor types for these inputs (fg::Error when the sizes of null dims do not fit).
std::vector<TensorType> bind_inputs(const DataError& data_error, const CompiledGraph& graph,
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
    throw data_error(fmt::format("the samples' shapes ({}) do not fit the graph: {}",
                                 fmt::join(described, ", "), e.what()));
  }
}

// Whether an output's targets are class ids: its loss says so; without a loss (metrics only),
// the data's integer dtype does.
bool sparse_targets(const OutputTraining& o, const NpyHeader& header) {
  if (o.loss) return o.loss->kind == LossKind::sparse_categorical_crossentropy;
  return header.kind == 'i';
}

bool needs_targets(const OutputTraining& o, const DatasetOptions& options) {
  return options.targets && (o.loss || !o.metrics.empty());
}

// The checked columns of a data set: `column_for` gives the column of every graph input, then of
// every output that needs targets (or throws when there is none); the inputs come first.
using ColumnFor = std::function<NpyColumn(DataField field, const std::string& what)>;

std::vector<NpyColumn> checked_columns(const CompiledGraph& graph,
                                       const std::vector<OutputTraining>& outputs,
                                       const DatasetOptions& options, const DataError& data_error,
                                       const ColumnFor& column_for, size_t& input_count) {
  std::vector<NpyColumn> columns;
  for (const auto& input : graph.def().inputs) {
    DataField field;
    field.name = input.name;
    columns.push_back(column_for(field, fmt::format("input '{}'", input.name)));
    check_input(columns.back(), input);
  }
  input_count = columns.size();
  std::vector<const OutputTraining*> trained;
  for (const auto& o : outputs) {
    if (!needs_targets(o, options)) continue;
    DataField field;
    field.name = o.output;
    field.target = true;
    columns.push_back(column_for(field, fmt::format("targets of output '{}'", o.output)));
    trained.push_back(&o);
  }
  if (columns.empty()) throw data_error("the graph has no inputs to read");
  check_lengths(columns);
  const std::vector<TensorType> types = bind_inputs(
      data_error, graph, std::vector<NpyColumn>(columns.begin(), columns.begin() + input_count));
  for (size_t t = 0; t < trained.size(); ++t) {
    NpyColumn& col = columns[input_count + t];
    check_target(col, types.at(trained[t]->tensor), sparse_targets(*trained[t], col.header));
  }
  return columns;
}

// ---------------------------------------------------------------------------------------------
// A folder of .npy files

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

// Maps the file and checks its header and that it holds one or more samples.
NpyColumn map_column(const std::string& path, DataField field, std::string what) {
  NpyColumn col;
  col.what = std::move(what);
  col.file = path;
  col.label = fs::path(path).filename().string();
  std::shared_ptr<const MappedFile> file;
  try {
    file = MappedFile::open(path);
    col.header = parse_npy_header(file->data(), file->size());
  } catch (const Error& e) {
    Error named = col.error(e.message());
    if (!e.hint_text().empty()) named.hint(e.hint_text());
    throw named;
  }
  col.data = file->data() + col.header.data_offset;
  col.keep = file;
  finish_column(col, std::move(field), path);
  return col;
}

// ---------------------------------------------------------------------------------------------
// Arrays in memory

// Checks the array's dtype, shape and data and that it holds one or more samples.
NpyColumn array_column(const std::string& arrays, const HostArray& array, DataField field,
                       std::string what) {
  NpyColumn col;
  col.what = std::move(what);
  col.arrays = arrays;
  col.label = col.what;
  try {
    col.header = npy_header_for(array.descr, array.shape);
  } catch (const Error& e) {
    Error named = col.error(e.message());
    if (!e.hint_text().empty()) named.hint(e.hint_text());
    throw named;
  }
  if (array.data == nullptr && col.header.elements > 0)
    throw col.error(fmt::format("the array of shape {} has no data (a null pointer)",
                                format_shape(array.shape)));
  col.data = static_cast<const unsigned char*>(array.data);
  col.keep = array.keep;
  finish_column(col, std::move(field), fmt::format("{}: {}", arrays, col.what));
  return col;
}

std::vector<std::string> names_of(const std::map<std::string, HostArray>& arrays) {
  std::vector<std::string> names;
  for (const auto& entry : arrays) names.push_back(entry.first);
  return names;
}

// Every given name is a graph input / output (a typo would otherwise leave its data unused).
void check_array_names(const ArrayData& data, const CompiledGraph& graph) {
  std::vector<std::string> inputs, outputs;
  for (const auto& in : graph.def().inputs) inputs.push_back(in.name);
  for (const auto& out : graph.def().outputs) outputs.push_back(out);
  for (const auto& [name, array] : data.inputs) {
    if (std::find(inputs.begin(), inputs.end(), name) != inputs.end()) continue;
    Error e(fmt::format("{}: the graph has no input '{}'; {}", data.name, name,
                        did_you_mean(name, inputs)));
    if (std::find(outputs.begin(), outputs.end(), name) != outputs.end())
      e.hint(fmt::format("'{}' is an output: give its targets with the targets (y)", name));
    throw e;
  }
  for (const auto& [name, array] : data.targets) {
    if (std::find(outputs.begin(), outputs.end(), name) != outputs.end()) continue;
    Error e(fmt::format("{}: targets for '{}', which is not an output of the graph; {}", data.name,
                        name, did_you_mean(name, outputs)));
    if (std::find(inputs.begin(), inputs.end(), name) != inputs.end())
      e.hint(fmt::format("'{}' is an input: give it with the inputs (x)", name));
    throw e;
  }
}

[[noreturn]] void missing_array(const ArrayData& data, const std::string& what, bool target) {
  const std::vector<std::string> given = names_of(target ? data.targets : data.inputs);
  throw Error(fmt::format("{}: no array for {}; the {} given are {}", data.name, what,
                          target ? "targets" : "inputs",
                          given.empty() ? std::string("none") : quoted_list(given)));
}

}  // namespace

Dataset open_npy_folder(const std::string& dir, const CompiledGraph& graph,
                        const std::vector<OutputTraining>& outputs, const DatasetOptions& options) {
  const std::vector<std::string> entries = folder_entries(dir);
  std::set<std::string> used;
  const ColumnFor column_for = [&](DataField field, const std::string& what) {
    const std::string file = field.name + ".npy";
    if (field.target && used.count(file)) {
      throw Error(fmt::format("output '{}' has the name of a graph input: its targets and the "
                              "input would both be {}",
                              field.name, file))
          .in_file(dir);
    }
    if (!std::binary_search(entries.begin(), entries.end(), file))
      missing_file(dir, file, what, entries);
    used.insert(file);
    return map_column((fs::path(dir) / file).string(), std::move(field), what);
  };
  const DataError data_error = [&](const std::string& message) {
    return Error(message).in_file(dir);
  };
  size_t inputs = 0;
  std::vector<NpyColumn> columns =
      checked_columns(graph, outputs, options, data_error, column_for, inputs);
  std::vector<std::string> ignored;
  for (const auto& e : entries)
    if (!used.count(e)) ignored.push_back(e);
  const int64_t samples = columns.front().header.shape[0];
  return Dataset(
      std::make_shared<NpySource>(dir, std::move(columns), inputs, samples, std::move(ignored)));
}

Dataset open_array_data(const ArrayData& data, const CompiledGraph& graph,
                        const std::vector<OutputTraining>& outputs, const DatasetOptions& options) {
  check_array_names(data, graph);
  std::set<std::string> used_targets;
  const ColumnFor column_for = [&](DataField field, const std::string& what) {
    const auto& arrays = field.target ? data.targets : data.inputs;
    const auto it = arrays.find(field.name);
    if (it == arrays.end()) missing_array(data, what, field.target);
    if (field.target) used_targets.insert(field.name);
    return array_column(data.name, it->second, std::move(field), what);
  };
  const DataError data_error = [&](const std::string& message) {
    return Error(fmt::format("{}: {}", data.name, message));
  };
  size_t inputs = 0;
  std::vector<NpyColumn> columns =
      checked_columns(graph, outputs, options, data_error, column_for, inputs);
  std::vector<std::string> ignored;  // targets of outputs that take none (or options.targets off)
  for (const auto& entry : data.targets)
    if (!used_targets.count(entry.first))
      ignored.push_back(fmt::format("targets of output '{}'", entry.first));
  const int64_t samples = columns.front().header.shape[0];
  return Dataset(std::make_shared<NpySource>(data.name, std::move(columns), inputs, samples,
                                             std::move(ignored)));
}

}  // namespace fg
