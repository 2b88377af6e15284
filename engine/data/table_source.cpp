// The table data source (engine/data/table_source.hpp).
#include "engine/data/table_source.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "engine/data/batch_prefetcher.hpp"
#include "engine/data/preprocess_cache.hpp"
#include "engine/data/preprocessors.hpp"
#include "engine/data/table.hpp"
#include "engine/mapped_file.hpp"
#include "engine/npy.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

namespace fs = std::filesystem;

enum class InputKind { image, audio, text, npy };

struct InputColumn {
  DataField field;
  int column = -1;
  InputKind kind = InputKind::npy;
};

// A trained output's targets, parsed for every table row at open (rows * elements values).
struct TargetColumn {
  DataField field;
  int column = -1;
  size_t elements = 1;
  std::vector<float> f32;
  std::vector<int32_t> i32;
};

const char* kind_name(InputKind k) {
  switch (k) {
    case InputKind::image:
      return "an image file";
    case InputKind::audio:
      return "an audio file";
    case InputKind::text:
      return "a text";
    case InputKind::npy:
      return "a .npy file";
  }
  return "";
}

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).string();
}

size_t elements_of(const Dims& d) {
  size_t n = 1;
  for (int64_t v : d) n *= static_cast<size_t>(v);
  return n;
}

// The first failure per row, by row, collected from any thread.
struct RowProblems {
  std::mutex mutex;
  std::vector<std::string> messages;  // per table row; empty = fine
  explicit RowProblems(int64_t rows) : messages(static_cast<size_t>(rows)) {}
  void set(int64_t row, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (messages[row].empty()) messages[row] = message;
  }
};

class TableSource final : public DataSource {
 public:
  TableSource(std::shared_ptr<const Table> table, std::shared_ptr<const Preprocessors> pre,
              std::vector<InputColumn> inputs, std::vector<TargetColumn> targets)
      : table_(std::move(table)),
        pre_(std::move(pre)),
        base_dir_(fs::path(table_->path()).parent_path().string()),
        input_columns_(std::move(inputs)),
        target_columns_(std::move(targets)) {
    for (const auto& c : input_columns_) inputs_.push_back(c.field);
    for (const auto& c : target_columns_) targets_.push_back(c.field);
    for (int64_t r = 0; r < table_->rows(); ++r) rows_.push_back(r);
  }

  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  const std::vector<DataField>& inputs() const override { return inputs_; }
  const std::vector<DataField>& targets() const override { return targets_; }
  std::vector<std::string> skipped() const override { return skipped_; }
  std::string describe() const override {
    std::string out =
        fmt::format("{}: {} rows{}\n", table_->path(), rows_.size(),
                    skipped_.empty() ? "" : fmt::format(" ({} skipped)", skipped_.size()));
    for (const auto& c : input_columns_)
      out += fmt::format("  input '{}': column '{}', {} -> {} {}\n", c.field.name,
                         table_->columns()[c.column], kind_name(c.kind), dtype_name(c.field.dtype),
                         format_shape(c.field.sample_shape));
    for (const auto& c : target_columns_)
      out += fmt::format("  targets of output '{}': column '{}' -> {} {}{}\n", c.field.name,
                         table_->columns()[c.column], dtype_name(c.field.dtype),
                         format_shape(c.field.sample_shape), c.field.sparse ? " (class ids)" : "");
    return out;
  }
  void read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
            int threads) const override;
  std::string content_key() const override;

  // Keeps only the rows without a problem, recording the others (skip_bad_rows).
  void drop_rows(const RowProblems& problems) {
    std::vector<int64_t> kept;
    for (int64_t r : rows_) {
      if (problems.messages[r].empty())
        kept.push_back(r);
      else
        skipped_.push_back(problems.messages[r]);
    }
    rows_ = std::move(kept);
  }
  const std::vector<int64_t>& table_rows() const { return rows_; }
  // Decodes one table row's inputs into row `i` of the batch.
  void read_row(int64_t row, int64_t i, Batch& batch, SampleValue& scratch) const;

 private:
  std::shared_ptr<const Table> table_;
  std::shared_ptr<const Preprocessors> pre_;
  std::string base_dir_;
  std::vector<InputColumn> input_columns_;
  std::vector<TargetColumn> target_columns_;
  std::vector<DataField> inputs_, targets_;
  std::vector<int64_t> rows_;  // the table rows of the samples
  std::vector<std::string> skipped_;
};

void TableSource::read_row(int64_t row, int64_t i, Batch& batch, SampleValue& value) const {
  for (size_t c = 0; c < input_columns_.size(); ++c) {
    const InputColumn& col = input_columns_[c];
    const std::string where = table_->where(row, col.column);
    const std::string& cell = table_->cell(row, col.column);
    Tensor& t = batch.inputs[c];
    const size_t n = elements_of(col.field.sample_shape);
    if (col.kind == InputKind::npy) {
      const std::string path = resolve(cell, base_dir_);
      Tensor sample;
      try {
        sample = read_npy(path, col.field.dtype, col.field.name);
      } catch (const Error& e) {
        throw Error(fmt::format("{}, file '{}': {}", where, path, e.message()));
      }
      if (sample.shape() != col.field.sample_shape)
        throw Error(
            fmt::format("{}, file '{}': holds shape {}, input '{}' takes samples of shape "
                        "{}",
                        where, path, format_shape(sample.shape()), col.field.name,
                        format_shape(col.field.sample_shape)));
      std::memcpy(t.mutable_data<unsigned char>() + i * sample.bytes(), sample.raw(),
                  sample.bytes());
      continue;
    }
    pre_->preprocess_input(col.field.name, cell, base_dir_, where, value);
    if (value.shape != col.field.sample_shape)
      throw Error(fmt::format(
          "{}: the preprocessed sample has shape {}, but input '{}' is batched "
          "as {}",
          where, format_shape(value.shape), col.field.name, format_shape(col.field.sample_shape)));
    if (col.field.dtype == DType::i32)
      std::memcpy(t.mutable_data<int32_t>() + i * n, value.i32.data(), n * sizeof(int32_t));
    else
      std::memcpy(t.mutable_data<float>() + i * n, value.f32.data(), n * sizeof(float));
  }
  for (size_t c = 0; c < target_columns_.size(); ++c) {
    const TargetColumn& col = target_columns_[c];
    Tensor& t = batch.targets[c];
    const size_t n = col.elements;
    if (col.field.dtype == DType::i32)
      std::memcpy(t.mutable_data<int32_t>() + i * n, col.i32.data() + row * n, n * sizeof(int32_t));
    else
      std::memcpy(t.mutable_data<float>() + i * n, col.f32.data() + row * n, n * sizeof(float));
  }
}

std::string TableSource::content_key() const {
  const std::shared_ptr<const MappedFile> file = MappedFile::open(table_->path());
  uint64_t h = fnv1a64(file->data(), file->size(), kFnvOffset);
  for (int64_t row : rows_) {
    for (const InputColumn& col : input_columns_) {
      if (col.kind == InputKind::text) continue;
      const std::string path = resolve(table_->cell(row, col.column), base_dir_);
      std::error_code ec;
      const auto size = static_cast<uint64_t>(fs::file_size(path, ec));
      const auto time =
          static_cast<int64_t>(fs::last_write_time(path, ec).time_since_epoch().count());
      const std::string stat = fmt::format("{}\n{} {}\n", path, size, time);
      h = fnv1a64(stat.data(), stat.size(), h);
    }
  }
  return fmt::format("{:016x}", h);
}

void TableSource::read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
                       int threads) const {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
  run_on_workers(count, std::max(1, threads), [&](int64_t begin, int64_t end) {
    SampleValue scratch;
    for (int64_t i = begin; i < end; ++i) {
      try {
        read_row(rows_[rows[i] + offset], i, batch, scratch);
      } catch (const Error&) {
        errors[i] = std::current_exception();
        return;
      }
    }
  });
  for (const auto& e : errors)  // the first failing sample of the batch, whatever the threads
    if (e) std::rethrow_exception(e);
}

// ---------------------------------------------------------------------------------------------
// Opening

int column_for(const Table& table, const std::string& name, const std::string& what) {
  const int column = table.column_index(name);
  if (column >= 0) return column;
  Error e(fmt::format("the table has no column '{}' for {} (its columns: {})", name, what,
                      quoted_list(table.columns())));
  e.in_file(table.path());
  const std::string near = closest_match(name, table.columns());
  if (!near.empty())
    e.hint(fmt::format("did you mean '{}'? (rename the column to '{}')", near, name));
  throw e;
}

// The per-sample shape of a preprocessed input: the preprocessing's, with the declared input's
// sizes where the preprocessing leaves them to the file; null lengths cannot be batched.
Dims preprocessed_sample_shape(const FieldPreprocessing& f, const InputDef& input,
                               const std::string& table) {
  Dims shape = preprocessed_shape(f.spec);
  for (size_t d = 0; d < shape.size() && d < input.shape.size(); ++d)
    if (shape[d] == kDynamic) shape[d] = input.shape[d];
  for (int64_t v : shape) {
    if (v != kDynamic) continue;
    std::string fix = "declare the size in the input's shape";
    if (std::holds_alternative<TextPreprocessing>(f.spec)) fix = "set output_sequence_length";
    if (std::holds_alternative<AudioPreprocessing>(f.spec)) fix = "set max_length";
    throw Error(fmt::format("input '{}': its preprocessing gives samples of shape {} whose null "
                            "size depends on each file, and samples of different sizes cannot "
                            "be batched for training",
                            input.name, format_shape(shape)))
        .in_file(table)
        .hint(fmt::format("{} in the input's preprocessing (it pads or truncates every sample)",
                          fix));
  }
  return shape;
}

InputColumn input_column(const Table& table, const InputDef& input, const Preprocessors& pre,
                         const std::string& base_dir) {
  InputColumn col;
  col.field.name = input.name;
  col.field.dtype = input.dtype;
  col.field.source = table.path();
  col.column = column_for(table, input.name, fmt::format("input '{}'", input.name));
  col.field.stored = fmt::format("column '{}'", input.name);
  if (const FieldPreprocessing* f = pre.config().input(input.name)) {
    col.kind = std::holds_alternative<ImagePreprocessing>(f->spec)   ? InputKind::image
               : std::holds_alternative<AudioPreprocessing>(f->spec) ? InputKind::audio
                                                                     : InputKind::text;
    col.field.sample_shape = preprocessed_sample_shape(*f, input, table.path());
    return col;
  }
  col.kind = InputKind::npy;
  col.field.sample_shape = input.shape;
  if (std::find(input.shape.begin(), input.shape.end(), kDynamic) == input.shape.end() ||
      table.rows() == 0)
    return col;
  // Null dims: the first row's file decides (every row must then have that shape).
  const std::string path = resolve(table.cell(0, col.column), base_dir);
  try {
    col.field.sample_shape = read_npy(path, input.dtype, input.name).shape();
  } catch (const Error& e) {
    throw Error(fmt::format("{}, file '{}': {}", table.where(0, col.column), path, e.message()));
  }
  return col;
}

// Numbers of a target cell: one number, a JSON array (nested arrays are flattened), or numbers
// separated by spaces. "" with `bad` set for anything else.
std::vector<double> parse_numbers(const std::string& cell, std::string& bad) {
  std::vector<double> out;
  if (!cell.empty() && cell.front() == '[') {
    nlohmann::json j = nlohmann::json::parse(cell, nullptr, false);
    if (j.is_discarded()) {
      bad = "not a JSON array of numbers";
      return {};
    }
    std::function<void(const nlohmann::json&)> flatten = [&](const nlohmann::json& v) {
      if (v.is_array()) {
        for (const auto& x : v) flatten(x);
      } else if (v.is_number()) {
        out.push_back(v.get<double>());
      } else if (bad.empty()) {
        bad = fmt::format("'{}' in the array is not a number", v.dump());
      }
    };
    flatten(j);
    return out;
  }
  size_t pos = 0;
  while (pos < cell.size()) {
    while (pos < cell.size() && std::isspace(static_cast<unsigned char>(cell[pos]))) ++pos;
    if (pos >= cell.size()) break;
    size_t end = pos;
    while (end < cell.size() && !std::isspace(static_cast<unsigned char>(cell[end]))) ++end;
    const std::string token = cell.substr(pos, end - pos);
    char* stop = nullptr;
    const double v = std::strtod(token.c_str(), &stop);
    if (stop != token.c_str() + token.size() || !std::isfinite(v)) {
      bad = fmt::format("'{}' is not a finite number", token);
      return {};
    }
    out.push_back(v);
    pos = end;
  }
  return out;
}

// How an output's targets are given and batched.
struct TargetPlan {
  const OutputTraining* output = nullptr;
  bool sparse = false;
  bool category = false;
  int64_t classes = 0;  // the output's class axis
  Dims out;             // the output's per-sample shape
};

void parse_target_cell(const Table& table, const Preprocessors& pre, const TargetPlan& plan,
                       int64_t row, TargetColumn& col) {
  const std::string where = table.where(row, col.column);
  const std::string& cell = table.cell(row, col.column);
  const std::string& name = plan.output->output;
  const size_t n = col.elements;
  if (table.missing(row, col.column))
    throw Error(fmt::format("{}: the cell is empty; output '{}' needs {}", where, name,
                            plan.category ? "a class name" : "its targets"));
  if (plan.category) {
    const int32_t id = pre.class_id(name, cell, where);
    if (plan.sparse)
      col.i32[row] = id;
    else if (n == 1)
      col.f32[row] = static_cast<float>(id);  // two classes on one sigmoid unit
    else
      col.f32[row * n + id] = 1.f;
    return;
  }
  std::string bad;
  const std::vector<double> values = parse_numbers(cell, bad);
  if (!bad.empty()) throw Error(fmt::format("{}: {} ('{}')", where, bad, cell));
  if (plan.sparse) {
    const double v = values.size() == 1 ? values[0] : -1;
    if (values.size() != 1 || v != std::floor(v) || v < 0 || v >= static_cast<double>(plan.classes))
      throw Error(fmt::format("{}: '{}' is not a class id in [0, {}) (output '{}' has {} classes)",
                              where, cell, plan.classes, name, plan.classes));
    col.i32[row] = static_cast<int32_t>(v);
    return;
  }
  if (values.size() != n)
    throw Error(fmt::format("{}: {} number{} for output '{}', which takes {} per sample (shape {})",
                            where, values.size(), values.size() == 1 ? "" : "s", name, n,
                            format_shape(plan.out)));
  for (size_t k = 0; k < n; ++k) col.f32[row * n + k] = static_cast<float>(values[k]);
}

TargetColumn target_column(const Table& table, const Preprocessors& pre, const TargetPlan& plan) {
  TargetColumn col;
  const std::string& name = plan.output->output;
  col.field.name = name;
  col.field.target = true;
  col.field.sparse = plan.sparse;
  col.field.source = table.path();
  col.field.stored = fmt::format("column '{}'", name);
  col.column = column_for(table, name, fmt::format("the targets of output '{}'", name));
  Dims sample = plan.out;
  if (plan.sparse) {
    if (!sample.empty()) sample.pop_back();
    col.field.dtype = DType::i32;
  } else {
    col.field.dtype = DType::f32;
  }
  col.field.sample_shape = sample;
  col.elements = elements_of(sample);
  const size_t total = col.elements * static_cast<size_t>(table.rows());
  if (plan.sparse)
    col.i32.assign(total, 0);
  else
    col.f32.assign(total, 0.f);
  return col;
}

TargetPlan plan_target(const OutputTraining& o, const TensorType& type, const Preprocessors& pre,
                       const std::string& table) {
  TargetPlan plan;
  plan.output = &o;
  plan.out.assign(type.shape.begin() + 1, type.shape.end());
  plan.classes = plan.out.empty() ? 1 : plan.out.back();
  plan.category = !pre.class_names(o.output).empty();
  plan.sparse = o.loss ? o.loss->kind == LossKind::sparse_categorical_crossentropy : plan.category;
  if (!plan.category) return plan;
  const int64_t classes = static_cast<int64_t>(pre.class_names(o.output).size());
  const bool one_unit = !plan.sparse && elements_of(plan.out) == 1 && classes == 2;
  if (!one_unit && plan.classes != classes)
    throw Error(fmt::format("output '{}' has {} class{} (its last axis, shape {}), but its "
                            "category preprocessing has {} classes ({})",
                            o.output, plan.classes, plan.classes == 1 ? "" : "es",
                            format_shape(plan.out), classes,
                            quoted_list(pre.class_names(o.output))))
        .in_file(table)
        .hint("make the output's units the number of classes, or list the classes");
  return plan;
}

// The cheap checks of one row's inputs: the cell is there, a file exists, a text is UTF-8.
void check_input_cell(const Table& table, const InputColumn& col, int64_t row,
                      const std::string& base_dir) {
  const std::string where = table.where(row, col.column);
  const std::string& cell = table.cell(row, col.column);
  if (table.missing(row, col.column) && col.kind != InputKind::text)
    throw Error(fmt::format("{}: the cell is empty; input '{}' needs {}", where, col.field.name,
                            kind_name(col.kind)));
  if (col.kind == InputKind::text) {
    const std::string problem = utf8_problem(cell);
    if (!problem.empty()) throw Error(fmt::format("{}: the text is {}", where, problem));
    return;
  }
  const std::string path = resolve(cell, base_dir);
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status))
    throw Error(fmt::format("{}, file '{}': no such file", where, path))
        .hint(fmt::format("paths are relative to the table's folder '{}'",
                          base_dir.empty() ? "." : base_dir));
  if (!fs::is_regular_file(status))
    throw Error(fmt::format("{}, file '{}': not a regular file", where, path));
}

}  // namespace

bool is_table_path(const std::string& path) {
  std::string lower = fs::path(path).extension().string();
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == ".csv" || lower == ".tsv" || lower == ".jsonl" || lower == ".ndjson";
}

std::string utf8_problem(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xC2);
    for (size_t k = 1; ok && k < len; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) {
      const unsigned cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6);
      ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok && len == 4) {
      const unsigned cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12);
      ok = cp >= 0x10000 && cp <= 0x10FFFF;
    }
    if (!ok) return fmt::format("not valid UTF-8 at byte {}", i);
    i += len;
  }
  return "";
}

namespace {

// The checks of every row at open; the first problem throws, or (skip) marks the row.
void check_rows(const Table& table, const Preprocessors& pre, const std::vector<InputColumn>& in,
                const std::vector<TargetPlan>& plans, std::vector<TargetColumn>& targets, bool skip,
                RowProblems& problems) {
  const std::string base_dir = fs::path(table.path()).parent_path().string();
  for (int64_t r = 0; r < table.rows(); ++r) {
    try {
      for (const auto& col : in) check_input_cell(table, col, r, base_dir);
      for (size_t t = 0; t < targets.size(); ++t)
        parse_target_cell(table, pre, plans[t], r, targets[t]);
    } catch (const Error& e) {
      if (!skip) throw;
      problems.set(r, e.message());
    }
  }
}

}  // namespace

Dataset open_table_dataset(const std::string& path, const CompiledGraph& graph,
                           const std::vector<OutputTraining>& outputs,
                           std::shared_ptr<const Preprocessors> pre,
                           const TableSourceOptions& options) {
  if (!pre) throw Error("open_table_dataset: no preprocessors");
  if (pre->needs_adapt())
    throw Error("the preprocessing has not learnt its vocabulary or classes yet (adapt first)")
        .in_file(path);
  auto table = std::make_shared<const Table>(Table::read(path));
  if (table->rows() == 0) throw Error("the table holds no rows").in_file(path);
  const std::string base_dir = fs::path(path).parent_path().string();
  std::vector<InputColumn> inputs;
  std::vector<Dims> shapes;
  for (const InputDef& input : graph.def().inputs) {
    inputs.push_back(input_column(*table, input, *pre, base_dir));
    Dims d = {1};
    d.insert(d.end(), inputs.back().field.sample_shape.begin(),
             inputs.back().field.sample_shape.end());
    shapes.push_back(d);
  }
  std::vector<TensorType> types;
  try {
    types = graph.bind(shapes);
  } catch (const Error& e) {
    throw Error(fmt::format("the samples' shapes do not fit the graph: {}", e.what()))
        .in_file(path);
  }
  std::vector<TargetPlan> plans;
  std::vector<TargetColumn> targets;
  for (const OutputTraining& o : outputs) {
    if (!options.targets || (!o.loss && o.metrics.empty())) continue;
    plans.push_back(plan_target(o, types.at(o.tensor), *pre, path));
    targets.push_back(target_column(*table, *pre, plans.back()));
  }
  RowProblems problems(table->rows());
  check_rows(*table, *pre, inputs, plans, targets, options.skip_bad_rows, problems);
  auto source = std::make_shared<TableSource>(table, pre, std::move(inputs), std::move(targets));
  if (options.skip_bad_rows && options.decode_check) {
    // Every row that passed the cheap checks is decoded once, on the workers.
    Dataset probe(source);
    run_on_workers(table->rows(), options.workers, [&](int64_t b, int64_t e) {
      Batch batch;
      for (int64_t i = b; i < e; ++i) {
        if (!problems.messages[i].empty()) continue;
        try {
          probe.gather(&i, 1, batch, 1);
        } catch (const Error& err) {
          problems.set(i, err.message());
        }
      }
    });
    source->drop_rows(problems);
    if (source->size() == 0)
      throw Error(fmt::format("every row of the table is bad ({} skipped); the first: {}",
                              source->skipped().size(), source->skipped().front()))
          .in_file(path);
  }
  return Dataset(source);
}

}  // namespace fg
