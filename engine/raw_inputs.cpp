// Raw inputs (include/fusiongraph/data.hpp): preprocessing of paths and texts into the input
// tensors of a batch, and class names for category outputs.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <fusiongraph/data.hpp>
#include <memory>
#include <numeric>
#include <thread>

#include "engine/json_header.hpp"
#include "engine/safetensors.hpp"
#include "framework/preprocessing.hpp"

namespace fg {

struct RawInputs::State {
  Preprocessors preprocessors;
  std::vector<std::string> raw_inputs;
  std::map<std::string, TensorType> input_types;
  std::string weights_file;
  bool from_weights = false;  // made from a weights file (or none), not from Preprocessors
};

namespace {

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string graph_folder(const CompiledGraph& graph, const std::string& graph_dir) {
  if (!graph_dir.empty()) return graph_dir;
  const std::string& file = graph.def().file;
  if (file.empty() || file[0] == '<') return ".";
  const std::filesystem::path parent = std::filesystem::path(file).parent_path();
  return parent.empty() ? "." : parent.string();
}

// The input's learnt state is missing: a text input without a vocabulary.
void check_learnt(const RawInputs& raw, const std::string& input, const std::string& weights,
                  bool from_weights) {
  const TextVectorizer* text = raw.preprocessors().text(input);
  if (!text || !text->vocabulary().empty()) return;
  if (!from_weights)
    throw Error(fmt::format("input '{}': its text vocabulary is learnt from the training data, "
                            "and the preprocessing given holds none (a trainer learns it when it "
                            "fits on a table, not on tensors)",
                            input))
        .hint("fit on a table first, or give the input a `vocabulary: FILE` in its preprocessing");
  throw Error(
      fmt::format("input '{}': its text vocabulary is learnt from the training data and {}; "
                  "pass the weights file that `graph-runner train` wrote (it keeps the "
                  "vocabulary under the metadata key \"{}\")",
                  input,
                  weights.empty() ? "no weights file was given"
                                  : fmt::format("weights file {} does not hold it", weights),
                  kPreprocessingMetadataKey))
      .hint("or give the input a `vocabulary: FILE` in its preprocessing");
}

// Runs fn(i) for i in [0, n) on `threads` threads (contiguous blocks); the exception of the
// lowest failing i is rethrown, so that messages do not depend on the thread count.
template <typename Fn>
void parallel_samples(int64_t n, int threads, const Fn& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  auto work = [&](int64_t w) {
    for (int64_t i = n * w / workers; i < n * (w + 1) / workers; ++i) try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
  };
  std::vector<std::thread> pool;
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int64_t elements(const Dims& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1},
                         [](int64_t a, int64_t b) { return a * b; });
}

// Copies a row-major block of shape `from` into the top-left corner of a zero-filled block of
// shape `to` (same rank, every dim <= to's): runs of the innermost dim at a time.
template <typename T>
void copy_padded(const T* src, const Dims& from, T* dst, const Dims& to) {
  if (from == to) {
    std::copy(src, src + elements(from), dst);
    return;
  }
  const size_t rank = from.size();
  const int64_t inner = from[rank - 1], runs = elements(from) / std::max<int64_t>(inner, 1);
  std::vector<int64_t> index(rank - 1, 0);
  for (int64_t r = 0; r < runs && inner > 0; ++r) {
    int64_t offset = 0;
    for (size_t d = 0; d + 1 < rank; ++d) offset = offset * to[d] + index[d];
    std::copy(src + r * inner, src + (r + 1) * inner, dst + offset * to[rank - 1]);
    for (size_t d = rank - 1; d-- > 0;) {
      if (++index[d] < from[d]) break;
      index[d] = 0;
    }
  }
}

// Checks one sample against the input's declaration; grows `shape` to the largest sample.
template <typename Where>
void check_sample(const std::string& input, const TensorType& type, const SampleValue& s, size_t i,
                  const Where& where, Dims& shape) {
  const size_t rank = type.shape.size() - 1;
  const size_t count = s.dtype == DType::i32 ? s.i32.size() : s.f32.size();
  if (s.shape.size() != rank || s.dtype != type.dtype)
    throw Error(fmt::format("{}: preprocessing gave {} {} but input '{}' is {} {}", where(i),
                            dtype_name(s.dtype), format_shape(s.shape), input,
                            dtype_name(type.dtype), format_shape(type.shape)));
  if (static_cast<int64_t>(count) != elements(s.shape))
    throw Error(fmt::format("{}: preprocessing gave {} values for the shape {}", where(i), count,
                            format_shape(s.shape)));
  for (size_t d = 0; d < rank; ++d) {
    const int64_t declared = type.shape[d + 1];
    if (declared != kDynamic && s.shape[d] != declared)
      throw Error(fmt::format("{}: preprocessing gave shape {} but input '{}' takes {} per sample",
                              where(i), format_shape(s.shape), input,
                              format_shape(Dims(type.shape.begin() + 1, type.shape.end()))));
    shape[d] = std::max(shape[d], s.shape[d]);
  }
}

// Stacks one input's samples into a [batch] + shape tensor, padding declared-null dims with
// zeros to the longest sample. `where(i)` names sample i for messages.
template <typename Where>
Tensor stack_samples(const std::string& input, const TensorType& type,
                     const std::vector<SampleValue>& samples, const Where& where) {
  Dims shape(type.shape.size() - 1, 0);
  for (size_t i = 0; i < samples.size(); ++i)
    check_sample(input, type, samples[i], i, where, shape);
  Dims full = shape;
  full.insert(full.begin(), static_cast<int64_t>(samples.size()));
  Tensor out(type.dtype, full);
  const int64_t row = elements(shape);
  for (size_t i = 0; i < samples.size(); ++i) {
    const SampleValue& s = samples[i];
    if (s.dtype == DType::i32)
      copy_padded(s.i32.data(), s.shape, out.mutable_data<int32_t>() + i * row, shape);
    else
      copy_padded(s.f32.data(), s.shape, out.mutable_data<float>() + i * row, shape);
  }
  return out;
}

// One input of a batch: sample i's raw value, and its name for messages.
struct FieldValues {
  std::string input;
  std::function<const std::string&(int64_t)> value;
  std::function<std::string(int64_t)> where;
};

// Preprocesses samples [0, n) of every field, one task per sample (all its fields), on
// `threads` threads, then stacks each field into its batch tensor.
std::map<std::string, Tensor> preprocess_fields(const Preprocessors& preprocessors,
                                                const std::map<std::string, TensorType>& types,
                                                const std::vector<FieldValues>& fields, int64_t n,
                                                const std::string& base_dir, int threads) {
  std::vector<std::vector<SampleValue>> prepared(fields.size(),
                                                 std::vector<SampleValue>(static_cast<size_t>(n)));
  parallel_samples(n, threads, [&](int64_t i) {
    for (size_t k = 0; k < fields.size(); ++k)
      preprocessors.preprocess_input(fields[k].input, fields[k].value(i), base_dir,
                                     fields[k].where(i), prepared[k][i]);
  });
  std::map<std::string, Tensor> out;
  for (size_t k = 0; k < fields.size(); ++k)
    out[fields[k].input] =
        stack_samples(fields[k].input, types.at(fields[k].input), prepared[k], fields[k].where);
  return out;
}

}  // namespace

namespace {

// The graph's preprocessing with the learnt state the weights file holds, if any.
Preprocessors learnt_preprocessors(const CompiledGraph& graph, const std::string& weights_file,
                                   const std::string& graph_dir) {
  Preprocessors out(parse_preprocessing(graph.def()), graph_folder(graph, graph_dir));
  const std::string json = weights_file.empty() ? "" : read_preprocessing_metadata(weights_file);
  if (!json.empty()) out.load_state_json(json, weights_file);
  return out;
}

}  // namespace

std::string read_preprocessing_metadata(const std::string& weights_file) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(weights_file.c_str(), "rb"), &std::fclose);
  if (!f) throw Error("cannot open the weights file").in_file(weights_file);
  unsigned char size_bytes[8];
  if (std::fread(size_bytes, 1, 8, f.get()) != 8)
    throw Error("not a safetensors file: shorter than its 8-byte header length")
        .in_file(weights_file);
  const uint64_t n = read_le64(size_bytes);
  if (n == 0 || n > kMaxSafetensorsHeader)
    throw Error(
        fmt::format("safetensors header length {} is outside 1..{}", n, kMaxSafetensorsHeader))
        .in_file(weights_file);
  std::string header(static_cast<size_t>(n), '\0');
  if (std::fread(header.data(), 1, header.size(), f.get()) != header.size())
    throw Error(fmt::format("the file ends inside its {}-byte header", n)).in_file(weights_file);
  JsonValue root;
  try {
    root = parse_json(header);
  } catch (const Error& e) {
    throw Error(std::string(e.message())).in_file(weights_file);
  }
  for (const auto& [key, value] : root.members) {
    if (key != "__metadata__" || value.kind != JsonValue::Kind::object) continue;
    for (const auto& [name, entry] : value.members)
      if (name == kPreprocessingMetadataKey) {
        if (entry.kind != JsonValue::Kind::string)
          throw Error(fmt::format("metadata \"{}\" is a {}, not a string", name, entry.kind_name()))
              .in_file(weights_file);
        return entry.text;
      }
  }
  return "";
}

RawInputs::RawInputs(const CompiledGraph& graph, const std::string& weights_file,
                     const std::string& graph_dir)
    : RawInputs(graph, learnt_preprocessors(graph, weights_file, graph_dir)) {
  // The state was made just now and is not shared yet.
  State& state = *std::const_pointer_cast<State>(state_);
  state.weights_file = weights_file;
  state.from_weights = true;
}

RawInputs::RawInputs(const CompiledGraph& graph, Preprocessors preprocessors) {
  auto state = std::make_shared<State>();
  const GraphDef& def = graph.def();
  state->preprocessors = std::move(preprocessors);
  for (size_t i = 0; i < def.inputs.size(); ++i) {
    TensorType type;
    type.dtype = def.inputs[i].dtype;
    type.shape = def.inputs[i].shape;
    type.shape.insert(type.shape.begin(), kDynamic);
    state->input_types[def.inputs[i].name] = type;
    if (state->preprocessors.has_input(def.inputs[i].name))
      state->raw_inputs.push_back(def.inputs[i].name);
  }
  state_ = std::move(state);
}

RawInputs::RawInputs(const Session& session, const std::string& weights_file,
                     const std::string& graph_dir)
    : RawInputs(session.graph(), weights_file, graph_dir) {}

const RawInputs::State& RawInputs::state() const {
  if (!state_) throw Error("RawInputs: default-constructed (no graph)");
  return *state_;
}

const Preprocessors& RawInputs::preprocessors() const {
  return state().preprocessors;
}

void RawInputs::adapt(const Table& table) {
  if (!state().preprocessors.needs_adapt()) return;
  auto copy = std::make_shared<State>(state());
  copy->preprocessors.adapt(table);
  state_ = std::move(copy);
}

const std::vector<std::string>& RawInputs::raw_input_names() const {
  return state().raw_inputs;
}

bool RawInputs::takes_raw(const std::string& input) const {
  const auto& names = state().raw_inputs;
  return std::find(names.begin(), names.end(), input) != names.end();
}

std::map<std::string, Tensor> RawInputs::batch(
    const std::map<std::string, std::vector<std::string>>& values,
    const RawBatchOptions& options) const {
  const State& s = state();
  if (options.threads < 1)
    throw Error(fmt::format("RawBatchOptions::threads must be 1 or more, got {}", options.threads));
  std::vector<std::string> names;
  for (const auto& [name, type] : s.input_types) names.push_back(name);
  int64_t samples = -1;
  for (const auto& [input, list] : values) {
    if (!s.input_types.count(input))
      throw Error(
          fmt::format("the graph has no input '{}'; {}", input, did_you_mean(input, names)));
    if (!takes_raw(input))
      throw Error(fmt::format("input '{}' declares no preprocessing, so it takes tensors (.npy), "
                              "not raw values such as '{}'",
                              input, list.empty() ? "" : list[0]))
          .hint(fmt::format("inputs that take raw values: {}", quoted_list(s.raw_inputs)));
    if (list.empty()) throw Error(fmt::format("input '{}': no values given", input));
    if (samples >= 0 && static_cast<int64_t>(list.size()) != samples)
      throw Error(
          fmt::format("input '{}' has {} values but another input has {}; give every "
                      "input one value per sample",
                      input, list.size(), samples));
    samples = static_cast<int64_t>(list.size());
    check_learnt(*this, input, s.weights_file, s.from_weights);
  }
  if (values.empty()) return {};
  std::vector<FieldValues> fields;
  for (const auto& entry : values) {
    const auto* list = &entry.second;
    const std::string* name = &entry.first;
    fields.push_back({entry.first, [list](int64_t i) -> const std::string& { return (*list)[i]; },
                      [name, list](int64_t i) {
                        return list->size() == 1
                                   ? fmt::format("input '{}' value '{}'", *name, (*list)[i])
                                   : fmt::format("input '{}' sample {} value '{}'", *name, i,
                                                 (*list)[i]);
                      }});
  }
  return preprocess_fields(s.preprocessors, s.input_types, fields, samples, options.base_dir,
                           options.threads);
}

std::map<std::string, Tensor> RawInputs::batch(const Table& table, int64_t begin, int64_t end,
                                               int threads) const {
  const State& s = state();
  if (begin < 0 || end > table.rows() || begin >= end)
    throw Error(
        fmt::format("rows [{}, {}) are not inside the table's {} rows", begin, end, table.rows()))
        .in_file(table.path());
  std::string base = std::filesystem::path(table.path()).parent_path().string();
  if (base.empty()) base = ".";
  std::vector<FieldValues> fields;
  for (const auto& input : s.raw_inputs) {
    const int column = table.column_index(input);
    if (column < 0)
      throw Error(fmt::format("the table has no column '{}' for the graph input '{}' (its "
                              "columns: {})",
                              input, input, quoted_list(table.columns())))
          .in_file(table.path());
    check_learnt(*this, input, s.weights_file, s.from_weights);
    auto where = [&table, begin, column](int64_t i) { return table.where(begin + i, column); };
    fields.push_back({input,
                      [&table, begin, column, where](int64_t i) -> const std::string& {
                        if (table.missing(begin + i, column))
                          throw Error(fmt::format("{}: the value is missing", where(i)));
                        return table.cell(begin + i, column);
                      },
                      where});
  }
  return preprocess_fields(s.preprocessors, s.input_types, fields, end - begin, base, threads);
}

const std::vector<std::string>& RawInputs::class_names(const std::string& output) const {
  return state().preprocessors.class_names(output);
}

std::vector<ClassProbability> RawInputs::top_classes(const std::string& output,
                                                     const Tensor& probabilities, int64_t sample,
                                                     int top) const {
  const std::vector<std::string>& names = class_names(output);
  const Dims& shape = probabilities.shape();
  if (shape.size() != 2 || probabilities.dtype() != DType::f32)
    throw Error(
        fmt::format("output '{}': class probabilities must be float32 [batch, classes], "
                    "got {} {}",
                    output, dtype_name(probabilities.dtype()), format_shape(shape)));
  if (!names.empty() && shape[1] != static_cast<int64_t>(names.size()))
    throw Error(
        fmt::format("output '{}' has {} values per sample but its preprocessing has {} "
                    "classes ({})",
                    output, shape[1], names.size(), quoted_list(names)));
  if (sample < 0 || sample >= shape[0])
    throw Error(
        fmt::format("output '{}': sample {} is outside the batch of {}", output, sample, shape[0]));
  const float* row = probabilities.data<float>() + sample * shape[1];
  std::vector<int64_t> order(static_cast<size_t>(shape[1]));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return row[a] > row[b]; });
  order.resize(static_cast<size_t>(std::clamp<int64_t>(top, 0, shape[1])));
  std::vector<ClassProbability> out;
  for (int64_t c : order)
    out.push_back({c, names.empty() ? fmt::format("class {}", c) : names[c], row[c]});
  return out;
}

}  // namespace fg
