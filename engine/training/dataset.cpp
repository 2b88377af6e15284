#include "engine/training/dataset.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "engine/data/preprocess_cache.hpp"
#include "engine/data/preprocessors.hpp"
#include "engine/data/table_source.hpp"
#include "framework/error.hpp"

namespace fg {

const Tensor* Batch::input(const std::string& name) const {
  for (size_t i = 0; i < input_names.size(); ++i)
    if (input_names[i] == name) return &inputs[i];
  return nullptr;
}

const Tensor* Batch::target(const std::string& output) const {
  for (size_t i = 0; i < target_names.size(); ++i)
    if (target_names[i] == output) return &targets[i];
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Dataset

Dataset::Dataset(std::shared_ptr<const DataSource> source)
    : source_(std::move(source)), begin_(0), end_(source_ ? source_->size() : 0) {}

const DataSource& Dataset::source() const {
  if (!source_) throw Error("the data set is empty (default-constructed)");
  return *source_;
}

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  if (begin < 0 || end > size() || begin >= end) {
    throw Error(fmt::format("cannot take samples [{}, {}) of a data set of {} samples", begin, end,
                            size()));
  }
  Dataset out = *this;
  out.begin_ = begin_ + begin;
  out.end_ = begin_ + end;
  return out;
}

const std::vector<DataField>& Dataset::inputs() const {
  return source().inputs();
}
const std::vector<DataField>& Dataset::targets() const {
  return source().targets();
}
std::vector<std::string> Dataset::ignored() const {
  return source().ignored();
}
std::vector<std::string> Dataset::skipped() const {
  return source().skipped();
}
std::string Dataset::describe() const {
  return source().describe();
}

std::vector<Dims> Dataset::input_shapes(int64_t batch) const {
  std::vector<Dims> shapes;
  for (const auto& f : inputs()) {
    Dims d = {batch};
    d.insert(d.end(), f.sample_shape.begin(), f.sample_shape.end());
    shapes.push_back(std::move(d));
  }
  return shapes;
}

namespace {

// Makes names/tensors match the fields, keeping every tensor that already fits.
void shape_batch_part(const std::vector<DataField>& fields, int64_t rows,
                      std::vector<std::string>& names, std::vector<Tensor>& tensors) {
  names.resize(fields.size());
  tensors.resize(fields.size());
  for (size_t f = 0; f < fields.size(); ++f) {
    if (names[f] != fields[f].name) names[f] = fields[f].name;
    Dims shape = {rows};
    shape.insert(shape.end(), fields[f].sample_shape.begin(), fields[f].sample_shape.end());
    if (tensors[f].empty() || tensors[f].dtype() != fields[f].dtype || tensors[f].shape() != shape)
      tensors[f] = Tensor(fields[f].dtype, shape);
  }
}

}  // namespace

void Dataset::gather(const int64_t* rows, int64_t count, Batch& batch, int threads) const {
  const DataSource& src = source();
  if (count < 1) throw Error(fmt::format("a batch needs at least one row, got {}", count));
  for (int64_t i = 0; i < count; ++i) {
    if (rows[i] < 0 || rows[i] >= size()) {
      throw Error(
          fmt::format("row {} (at position {} of the batch) is outside the data set's {} "
                      "samples",
                      rows[i], i, size()));
    }
  }
  shape_batch_part(src.inputs(), count, batch.input_names, batch.inputs);
  shape_batch_part(src.targets(), count, batch.target_names, batch.targets);
  batch.rows = count;
  src.read(rows, count, begin_, batch, threads > 0 ? threads : omp_get_max_threads());
}

void Dataset::gather(const std::vector<int64_t>& rows, Batch& batch, int threads) const {
  gather(rows.data(), static_cast<int64_t>(rows.size()), batch, threads);
}

Dataset open_dataset(const std::string& path, const CompiledGraph& graph,
                     const std::vector<OutputTraining>& outputs, const DatasetOptions& options) {
  if (!is_table_path(path)) return open_npy_folder(path, graph, outputs, options);
  std::shared_ptr<const Preprocessors> pre = options.preprocessors;
  if (!pre) pre = std::make_shared<const Preprocessors>();
  TableSourceOptions table;
  table.targets = options.targets;
  table.skip_bad_rows = options.skip_bad_rows;
  table.workers = std::max(1, options.workers);
  table.decode_check = options.cache_dir.empty();  // the cache build decodes every row
  Dataset data = open_table_dataset(path, graph, outputs, pre, table);
  if (options.cache_dir.empty()) return data;
  return open_cached_dataset(data, options.cache_dir, cache_checksum(path, *pre, data),
                             table.workers, options.skip_bad_rows);
}

// ---------------------------------------------------------------------------------------------
// Splits and epoch order

int64_t validation_split_at(int64_t samples, double validation_split) {
  if (!(validation_split > 0.0 && validation_split < 1.0))
    throw Error(fmt::format("validation_split must be in (0, 1), got {}", validation_split));
  const auto split =
      static_cast<int64_t>(std::floor(static_cast<double>(samples) * (1.0 - validation_split)));
  if (split <= 0 || split >= samples) {
    throw Error(fmt::format("the training data holds {} samples, which is not enough to split "
                            "it into a training and a validation set with validation_split {}",
                            samples, validation_split))
        .hint("provide more data, a different validation_split, or --validation-data");
  }
  return split;
}

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): state += golden gamma, then the mix.
uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  uint64_t state;
  uint64_t next() { return splitmix64_mix(state += 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, bound): rejection of the low values that would bias x % bound.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    uint64_t x = next();
    while (x < threshold) x = next();
    return x % bound;
  }
};

}  // namespace

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  if (n < 0) throw Error(fmt::format("epoch_order: {} samples", n));
  if (epoch < 0) throw Error(fmt::format("epoch_order: epoch {}", epoch));
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle) return order;
  SplitMix64 rng{splitmix64_mix(seed) ^ splitmix64_mix(static_cast<uint64_t>(epoch) + 1)};
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

}  // namespace fg
