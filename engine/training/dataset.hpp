// Training data: a data set is a source of samples (rows) behind one interface, opened against a
// compiled graph and its resolved training outputs, validated up front, then read in batches.
//
//   Dataset data = open_dataset("data/train", graph, outputs);      // every check happens here
//   int64_t split = validation_split_at(data.size(), 0.1);         // Keras: the LAST samples
//   Dataset train = data.slice(0, split), validation = data.slice(split, data.size());
//   Batch batch;
//   std::vector<int64_t> order = epoch_order(train.size(), seed, epoch, /*shuffle=*/true);
//   train.gather(order.data() + begin, rows, batch, threads);      // shuffled rows, in parallel
//
// Sources: a folder of .npy files (one per graph input, named as the input, and one per trained
// output with its targets, named as the output), memory-mapped so that a data set larger than
// memory trains; the same arrays already in memory (open_array_data); tables of raw files
// (images, audio, text: engine/data/table_source.hpp) behind the same Dataset. Layout and rules:
// docs/training.md, docs/formats.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/shape.hpp"
#include "framework/training_config.hpp"
#include "kernels/tensor.hpp"

namespace fg {

class CompiledGraph;
class Preprocessors;
struct ArrayData;  // include/fusiongraph/training.hpp

// One tensor of a sample: a graph input, or the targets of a trained output.
struct DataField {
  std::string name;  // the graph input, or the output whose targets these are
  bool target = false;
  bool sparse = false;       // class ids (sparse_categorical_crossentropy), int32 in a batch
  DType dtype = DType::f32;  // as gathered into a batch
  Dims sample_shape;         // per sample, concrete (no batch): a batch is [rows] + this
  std::string source;        // where it is read from (a file), for messages
  std::string stored;        // how it is stored there, e.g. "'<f8' (1000, 28, 28, 1)"
};

// A batch of samples: one tensor per field, batch first, in the data set's field order (graph
// inputs in graph order, then targets in output order). Dataset::gather fills it and keeps its
// tensors when they already have the right dtype and shape (no tensor is allocated then).
struct Batch {
  int64_t rows = 0;
  std::vector<std::string> input_names;
  std::vector<Tensor> inputs;
  std::vector<std::string> target_names;  // output names
  std::vector<Tensor> targets;

  const Tensor* input(const std::string& name) const;     // nullptr when there is none
  const Tensor* target(const std::string& output) const;  // nullptr when there is none
};

// Where samples come from. Implementations: the .npy folder (below); raw-data sources later.
class DataSource {
 public:
  virtual ~DataSource() = default;
  virtual int64_t size() const = 0;
  virtual const std::vector<DataField>& inputs() const = 0;
  virtual const std::vector<DataField>& targets() const = 0;
  // Entries of the source that are not used (stray files), for a listing; never a warning.
  virtual std::vector<std::string> ignored() const { return {}; }
  // Rows left out by --skip-bad-rows, one message each (table, row, column, file, why).
  virtual std::vector<std::string> skipped() const { return {}; }
  // What the samples are made from, for cache checksums (a table: its bytes and the size and
  // modification time of every file it names); "" when the source cannot be cached.
  virtual std::string content_key() const { return ""; }
  virtual std::string describe() const = 0;  // one line per field: where, dtype, shape
  // Writes sample `rows[i] + offset` into row i of every batch tensor, which Dataset::gather
  // has shaped ([count] + sample_shape) and checked (rows in range). Runs on `threads` threads
  // (>= 1). Throws fg::Error naming the file and row for data that cannot be converted.
  virtual void read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
                    int threads) const = 0;
};

// A data set: a source's samples [begin, end). Cheap to copy (slices share the source).
class Dataset {
 public:
  Dataset() = default;
  explicit Dataset(std::shared_ptr<const DataSource> source);

  int64_t size() const { return end_ - begin_; }
  // Samples [begin, end) of this data set (fg::Error for a range outside it or empty).
  Dataset slice(int64_t begin, int64_t end) const;
  // Copies the samples `rows[0..count)` (indices into this data set, any order, repeats
  // allowed) into `batch`: batch.rows = count, each tensor [count] + the field's sample shape,
  // dtypes converted (f64 -> f32, ints -> f32, i64 -> i32). Reuses batch tensors of the right
  // dtype and shape (no allocation), reallocates the others. In parallel over rows on `threads`
  // threads (0 = OpenMP's default). fg::Error for count < 1 or a row out of range.
  void gather(const int64_t* rows, int64_t count, Batch& batch, int threads = 0) const;
  void gather(const std::vector<int64_t>& rows, Batch& batch, int threads = 0) const;

  const std::vector<DataField>& inputs() const;
  const std::vector<DataField>& targets() const;
  // Full input shapes ([batch] + sample shape, graph input order), for CompiledGraph::bind.
  std::vector<Dims> input_shapes(int64_t batch) const;
  std::vector<std::string> ignored() const;
  std::vector<std::string> skipped() const;
  std::string describe() const;
  const DataSource& source() const;

 private:
  std::shared_ptr<const DataSource> source_;
  int64_t begin_ = 0, end_ = 0;
};

struct DatasetOptions {
  // false: only the graph inputs are read (prediction); target files are then ignored.
  bool targets = true;
  // Tables: the graph's preprocessing, adapted (engine/data/preprocessors.hpp); required for a
  // table whose graph declares any, else the inputs are .npy files named by the table.
  std::shared_ptr<const Preprocessors> preprocessors;
  bool skip_bad_rows = false;  // tables: skip (and list) bad rows instead of failing
  int workers = 1;             // tables: threads of the --skip-bad-rows validation pass
  // Tables: a folder of preprocessed shards (engine/data/preprocess_cache.hpp); "" = none.
  std::string cache_dir;
};

// Opens a data set for `graph`: a table (.csv, .tsv, .jsonl, .ndjson: open_table_dataset in
// engine/data/table_source.hpp, through the cache when options.cache_dir is set) or a folder of
// .npy files (open_npy_folder). `outputs` are resolve_training_outputs()'s; outputs with a loss
// or metrics need targets.
Dataset open_dataset(const std::string& path, const CompiledGraph& graph,
                     const std::vector<OutputTraining>& outputs,
                     const DatasetOptions& options = {});

// A folder with <input>.npy per graph input and <output>.npy per output that needs targets,
// memory-mapped (nothing but headers is read, except the class ids of sparse targets, which are
// checked once). Every problem is an fg::Error naming the file and the input or output: a
// missing file (listing what the folder holds), a dtype or per-sample shape that does not fit,
// files of different lengths, no samples, class ids outside [0, classes). Other entries of the
// folder are ignored (Dataset::ignored lists them).
Dataset open_npy_folder(const std::string& dir, const CompiledGraph& graph,
                        const std::vector<OutputTraining>& outputs,
                        const DatasetOptions& options = {});

// Arrays in memory (fg::ArrayData: an array per graph input, one per output that needs
// targets), checked, converted and read exactly as the files of an .npy folder, with the same
// messages naming "<data.name>: input 'x'" instead of the file. A name that is no graph input
// (inputs) or output (targets) is an fg::Error with a did-you-mean; a missing array lists the
// names given; an array with a null pointer and elements is an fg::Error. Targets of outputs
// that need none are ignored (Dataset::ignored lists them). The data set keeps every array's
// `keep` alive; the caller keeps arrays without one alive while the data set is used.
Dataset open_array_data(const ArrayData& data, const CompiledGraph& graph,
                        const std::vector<OutputTraining>& outputs,
                        const DatasetOptions& options = {});

// Keras's validation_split: the first floor(samples * (1 - split)) samples train, the rest
// validate. fg::Error when either part would be empty. Returns the split point.
int64_t validation_split_at(int64_t samples, double validation_split);

// The order of an epoch's samples: 0..n-1, or (shuffle) a permutation that depends only on
// `seed` and `epoch` (so a resumed epoch sees the same order): a Fisher-Yates shuffle driven by
// SplitMix64 (docs/training.md gives the exact algorithm).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

}  // namespace fg
