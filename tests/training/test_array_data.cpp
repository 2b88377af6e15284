// Training on arrays in memory (fg::ArrayData, include/fusiongraph/training.hpp): fit and
// evaluate on arrays against the same on the .npy folder the arrays are saved to (the files are
// written here byte for byte as np.save writes them), dtype conversions against arrays converted
// by hand, every error of the arrays, validation arrays, the validation_split override, initial
// weights in memory, Trainer::raw_inputs, and a callback that throws to stop fit (as the Python
// module does on Ctrl-C). Expected values come from the folder path, from hand conversions or
// from a second trainer, never from the arrays path itself.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <fusiongraph/training.hpp>
#include <limits>
#include <stdexcept>

#include "engine/npy.hpp"
#include "engine/training/dataset.hpp"
#include "framework/training_config.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

// An array in memory that owns its values (kept alive through HostArray::keep).
template <typename T>
HostArray host_array(const std::string& descr, const Dims& shape, std::vector<T> values) {
  auto owned = std::make_shared<std::vector<T>>(std::move(values));
  HostArray a;
  a.descr = descr;
  a.shape = shape;
  a.data = owned->data();
  a.keep = owned;
  return a;
}

size_t item_size(const std::string& descr) {
  return descr[2] == '4' ? 4 : 8;
}

size_t elements_of(const Dims& shape) {
  size_t n = 1;
  for (Dim d : shape) n *= static_cast<size_t>(d);
  return n;
}

// The file np.save writes for the array: format 1.0, the header padded to 64 bytes, raw data.
void save_npy(const std::string& path, const HostArray& a) {
  std::string shape = "(";
  for (size_t d = 0; d < a.shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(a.shape[d]);
  shape += a.shape.size() == 1 ? ",)" : ")";
  std::string header =
      "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  const std::string raw(static_cast<const char*>(a.data),
                        elements_of(a.shape) * item_size(a.descr));
  write_bytes(path,
              std::string("\x93NUMPY\x01\x00", 8) + le_bytes(header.size(), 2) + header + raw);
}

// The folder np.save(dir / f"{name}.npy", a) writes for every array.
std::string save_folder(const std::string& dir, const ArrayData& data) {
  std::filesystem::create_directories(dir);
  for (const auto* arrays : {&data.inputs, &data.targets})
    for (const auto& [name, a] : *arrays) save_npy(dir + "/" + name + ".npy", a);
  return dir;
}

// Rows of a 3-class problem on 4 features: x as float64 (values that float32 rounds), the
// class of row r is r % 3 with a feature nudged towards it.
std::vector<double> features(int64_t n, uint64_t seed) {
  const Tensor base = random_tensor({n, 4}, seed);
  std::vector<double> x;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < 4; ++i)
      x.push_back(base.data<float>()[r * 4 + i] + (i == r % 3 ? 0.7 : 0.0) + 1e-9 * (r + 1));
  return x;
}

std::vector<float> one_hot(int64_t n) {
  std::vector<float> y(static_cast<size_t>(n * 3), 0.f);
  for (int64_t r = 0; r < n; ++r) y[r * 3 + r % 3] = 1.f;
  return y;
}

template <typename T>
std::vector<T> class_ids(int64_t n) {
  std::vector<T> ids;
  for (int64_t r = 0; r < n; ++r) ids.push_back(static_cast<T>(r % 3));
  return ids;
}

std::vector<float> rounded(const std::vector<double>& x) {
  return std::vector<float>(x.begin(), x.end());  // static_cast: IEEE round to nearest
}

constexpr int64_t kSamples = 13;

// A dense classifier: batch 4, 2 epochs, shuffled, validation_split 0.25 (`split`).
std::string dense_graph(const std::string& dir, const std::string& split = "0.25") {
  std::filesystem::create_directories(dir);
  return write_text(
      dir + "/graph.yaml",
      "name: dense\ninputs: {x: {shape: [4]}}\nnodes:\n"
      "  - {name: h, op: dense, input: x, units: 8, activation: relu}\n"
      "  - {name: out, op: dense, input: h, units: 3, activation: softmax}\noutputs: [out]\n"
      "training: {loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: 0.05}, "
      "metrics: [accuracy], batch_size: 4, epochs: 2, shuffle: true, seed: 5" +
          (split.empty() ? std::string() : ", validation_split: " + split) + "}\n");
}

// Float features and int32 tokens (ids < 10) into a softmax over 3 classes, sparse targets.
std::string token_graph(const std::string& dir) {
  std::filesystem::create_directories(dir);
  return write_text(
      dir + "/graph.yaml",
      "name: tokens\ninputs: {x: {shape: [4]}, tokens: {shape: [3], dtype: int32}}\nnodes:\n"
      "  - {name: emb, op: embedding, input: tokens, input_dim: 10, output_dim: 2}\n"
      "  - {name: pooled, op: global_average_pooling1d, input: emb}\n"
      "  - {name: merged, op: concatenate, inputs: [x, pooled]}\n"
      "  - {name: out, op: dense, input: merged, units: 3, activation: softmax}\noutputs: [out]\n"
      "training: {loss: sparse_categorical_crossentropy, optimizer: adam, metrics: [accuracy], "
      "batch_size: 4, epochs: 2, shuffle: true, seed: 9, validation_split: 0.25}\n");
}

std::vector<int64_t> token_values(int64_t n) {
  std::vector<int64_t> t;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < 3; ++k) t.push_back((3 * r + 5 * k + r % 3) % 10);
  return t;
}

ArrayData dense_arrays(int64_t n = kSamples, uint64_t seed = 3) {
  ArrayData data;
  data.inputs["x"] = host_array("<f8", {n, 4}, features(n, seed));
  data.targets["out"] = host_array("<f4", {n, 3}, one_hot(n));
  return data;
}

ArrayData token_arrays() {
  ArrayData data;
  data.inputs["x"] = host_array("<f8", {kSamples, 4}, features(kSamples, 4));
  data.inputs["tokens"] = host_array("<i8", {kSamples, 3}, token_values(kSamples));
  data.targets["out"] = host_array("<i8", {kSamples}, class_ids<int64_t>(kSamples));
  return data;
}

TrainerOptions one_thread() {
  TrainerOptions options;
  options.threads = 1;
  return options;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

void check_same_weights(const WeightStore& a, const WeightStore& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (const auto& [k, t] : a.tensors()) {
    const Tensor* u = b.find(k);
    REQUIRE_MESSAGE(u != nullptr, k);
    REQUIRE(u->bytes() == t.bytes());
    CHECK_MESSAGE(std::memcmp(u->raw(), t.raw(), t.bytes()) == 0, "weight " << k << " differs");
  }
}

void check_same_history(const std::vector<EpochResult>& a, const std::vector<EpochResult>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t e = 0; e < a.size(); ++e) {
    CAPTURE(e);
    CHECK(a[e].epoch == b[e].epoch);
    CHECK(a[e].samples == b[e].samples);
    CHECK(a[e].learning_rate == b[e].learning_rate);
    REQUIRE(a[e].logs.size() == b[e].logs.size());
    for (size_t i = 0; i < a[e].logs.size(); ++i) {
      CHECK(a[e].logs[i].first == b[e].logs[i].first);
      CHECK_MESSAGE(a[e].logs[i].second == b[e].logs[i].second, a[e].logs[i].first);
    }
  }
}

bool has_log(const TrainingLogs& logs, const std::string& name) {
  for (const auto& [k, v] : logs)
    if (k == name) return true;
  return false;
}

// The fg::Error message of f, checked to hold every word.
void check_message(const std::function<void()>& f, const std::vector<std::string>& words) {
  const std::string message = error_of(f);
  INFO("message: " << message);
  REQUIRE_FALSE(message.empty());
  for (const auto& w : words) CHECK_MESSAGE(message.find(w) != std::string::npos, "missing " << w);
}

}  // namespace

TEST_CASE(
    "arrays: fit on float64 arrays gives the weights and history of fit on the .npy folder "
    "they are saved to, and of float32 arrays rounded by hand") {
  NamedTempDir dir("fg_arrays", "fit_equal");
  const std::string graph = dense_graph(dir.path);
  const ArrayData data = dense_arrays();
  const std::string folder = save_folder(dir.path + "/data", data);
  Trainer on_folder(graph, one_thread()), on_arrays(graph, one_thread());
  const FitResult want = on_folder.fit(folder);
  const FitResult got = on_arrays.fit(data);
  check_same_weights(on_folder.weights(), on_arrays.weights());
  check_same_history(want.history, got.history);
  REQUIRE(got.history.size() == 2);
  CHECK(got.history.back().samples == 9);  // floor(13 * 0.75) train, the last 4 validate
  CHECK(has_log(got.history.back().logs, "val_accuracy"));
  CHECK(on_arrays.history().size() == 2);

  ArrayData as_f32 = data;  // f64 -> f32 is IEEE rounding, as for the files
  as_f32.inputs["x"] = host_array("<f4", {kSamples, 4}, rounded(features(kSamples, 3)));
  Trainer on_f32(graph, one_thread());
  check_same_history(want.history, on_f32.fit(as_f32).history);
  check_same_weights(on_folder.weights(), on_f32.weights());
}

TEST_CASE(
    "arrays: int64 tokens and int64 class ids (shapes N and N x 1) train as their .npy "
    "files and as int32 arrays") {
  NamedTempDir dir("fg_arrays", "ints");
  const std::string graph = token_graph(dir.path);
  const ArrayData data = token_arrays();
  Trainer on_folder(graph, one_thread());
  const FitResult want = on_folder.fit(save_folder(dir.path + "/data", data));
  Trainer on_arrays(graph, one_thread());
  check_same_history(want.history, on_arrays.fit(data).history);
  check_same_weights(on_folder.weights(), on_arrays.weights());

  ArrayData as_i32 = data;
  const std::vector<int64_t> tokens = token_values(kSamples);
  as_i32.inputs["tokens"] =
      host_array("<i4", {kSamples, 3}, std::vector<int32_t>(tokens.begin(), tokens.end()));
  as_i32.targets["out"] = host_array("<i4", {kSamples, 1}, class_ids<int32_t>(kSamples));
  Trainer on_i32(graph, one_thread());
  check_same_history(want.history, on_i32.fit(as_i32).history);
  check_same_weights(on_folder.weights(), on_i32.weights());
}

TEST_CASE("arrays: evaluate on arrays equals evaluate on the folder, after the same fit") {
  NamedTempDir dir("fg_arrays", "evaluate");
  const std::string graph = token_graph(dir.path);
  const ArrayData data = token_arrays();
  const std::string folder = save_folder(dir.path + "/data", data);
  Trainer trainer(graph, one_thread());
  trainer.fit(data);
  const EvaluateResult want = trainer.evaluate(folder), got = trainer.evaluate(data);
  CHECK(got.samples == kSamples);
  CHECK(got.samples == want.samples);
  REQUIRE(got.logs.size() == want.logs.size());
  for (size_t i = 0; i < got.logs.size(); ++i) {
    CHECK(got.logs[i].first == want.logs[i].first);
    CHECK(got.logs[i].second == want.logs[i].second);
  }
  ArrayData no_targets = data;
  no_targets.targets.clear();
  check_message([&] { trainer.evaluate(no_targets); },
                {"arrays: no array for targets of output 'out'", "the targets given are none"});
}

TEST_CASE(
    "arrays: validation_arrays validate as validation_data on their folder, both at once is "
    "an error") {
  NamedTempDir dir("fg_arrays", "validation");
  const std::string graph = dense_graph(dir.path, "");
  const ArrayData train = dense_arrays(kSamples, 3), validation = dense_arrays(7, 8);
  FitOptions with_folder;
  with_folder.validation_data = save_folder(dir.path + "/validation", validation);
  Trainer on_folders(graph, one_thread());
  const FitResult want = on_folders.fit(save_folder(dir.path + "/train", train), with_folder);
  FitOptions with_arrays;
  with_arrays.validation_arrays = validation;
  Trainer on_arrays(graph, one_thread());
  const FitResult got = on_arrays.fit(train, with_arrays);
  check_same_history(want.history, got.history);
  check_same_weights(on_folders.weights(), on_arrays.weights());
  CHECK(got.history.back().samples == kSamples);  // no split: every sample trains
  CHECK(has_log(got.history.back().logs, "val_loss"));

  FitOptions both = with_arrays;
  both.validation_data = with_folder.validation_data;
  check_message([&] { Trainer(graph, one_thread()).fit(train, both); },
                {"validation_data", "validation_arrays", "not both"});
  FitOptions wrong;
  wrong.validation_arrays = validation;
  wrong.validation_arrays->inputs["x"] = host_array("<f4", {7, 5}, std::vector<float>(35, 0.f));
  check_message([&] { Trainer(graph, one_thread()).fit(train, wrong); },
                {"validation arrays: input 'x': samples of shape (5,)"});
}

TEST_CASE("arrays: every error names the array, the input or output and the fix") {
  NamedTempDir dir("fg_arrays", "errors");
  const std::string graph = token_graph(dir.path);
  Trainer trainer(graph, one_thread());
  const auto fit_with = [&](const std::function<void(ArrayData&)>& change) {
    ArrayData data = token_arrays();
    change(data);
    return [&trainer, data] { trainer.fit(data); };
  };
  check_message(fit_with([](ArrayData& d) { d.inputs.erase("tokens"); }),
                {"arrays: no array for input 'tokens'", "the inputs given are 'x'"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["tokenz"] = d.inputs["tokens"];
                  d.inputs.erase("tokens");
                }),
                {"arrays: the graph has no input 'tokenz'", "did you mean 'tokens'?"});
  check_message(fit_with([](ArrayData& d) { d.inputs["out"] = d.inputs["x"]; }),
                {"the graph has no input 'out'", "'out' is an output"});
  check_message(fit_with([](ArrayData& d) {
                  d.targets["outt"] = d.targets["out"];
                  d.targets.erase("out");
                }),
                {"arrays: targets for 'outt', which is not an output", "did you mean 'out'?"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["x"] = host_array("<f4", {kSamples, 5}, std::vector<float>(65, 0.f));
                }),
                {"arrays: input 'x': samples of shape (5,) (array shape (13, 5)) do not fit the "
                 "input's declared shape (4,)"});
  check_message(fit_with([](ArrayData& d) {
                  d.targets["out"] = host_array("<i4", {12}, class_ids<int32_t>(12));
                }),
                {"arrays: input 'x' holds 13 samples but targets of output 'out' holds 12",
                 "every array needs one row per sample"});
  check_message(fit_with([](ArrayData& d) {
                  std::vector<int64_t> ids = class_ids<int64_t>(kSamples);
                  ids[7] = 3;
                  d.targets["out"] = host_array("<i8", {kSamples}, ids);
                }),
                {"arrays: targets of output 'out': row 7 holds class id 3, outside [0, 3)"});
  check_message(fit_with([](ArrayData& d) {
                  d.targets["out"] = host_array("<f4", {kSamples}, std::vector<float>(13, 1.f));
                }),
                {"arrays: targets of output 'out'", "sparse targets are int class ids",
                 "ids.astype(np.int32)"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["x"].data = nullptr;
                  d.inputs["x"].keep.reset();
                }),
                {"arrays: input 'x': the array of shape (13, 4) has no data (a null pointer)"});
  check_message(
      fit_with([](ArrayData& d) {
        d.inputs["x"] = host_array("|u1", {kSamples, 4}, std::vector<unsigned char>(52, 1));
      }),
      {"arrays: input 'x': unsupported dtype '|u1'", "'<f4', '<f8', '<i4', '<i8'"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["tokens"] = host_array("<f4", {kSamples, 3}, std::vector<float>(39, 1));
                }),
                {"arrays: input 'tokens': the input is int32 but the array holds floating-point "
                 "'<f4'",
                 "pass the array as integers, e.g. a.astype(np.int32)"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["x"] = host_array("<f4", {0, 4}, std::vector<float>{});
                }),
                {"arrays: input 'x': no samples: shape (0, 4)"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["x"] = host_array("<f4", {}, std::vector<float>{1.f});
                }),
                {"arrays: input 'x': a 0-d array holds no samples"});
  check_message(fit_with([](ArrayData& d) {
                  d.inputs["x"].shape = {kSamples, -4};
                }),
                {"arrays: input 'x'", "negative dimension"});
  // An int64 token beyond int32 fails when its batch is read, naming the row.
  check_message(fit_with([](ArrayData& d) {
                  std::vector<int64_t> tokens = token_values(kSamples);
                  tokens[6 * 3 + 1] = int64_t(1) << 40;
                  d.inputs["tokens"] = host_array("<i8", {kSamples, 3}, tokens);
                }),
                {"arrays: input 'tokens': row 6 holds a value that does not fit into int32"});
  // The data's name is the caller's.
  check_message(fit_with([](ArrayData& d) {
                  d.name = "x_train";
                  d.inputs.erase("x");
                }),
                {"x_train: no array for input 'x'"});
  // No file is named: the messages are about memory.
  const std::string message = error_of(fit_with([](ArrayData& d) { d.inputs.erase("x"); }));
  CHECK(message.find(".npy") == std::string::npos);
}

TEST_CASE(
    "arrays: TrainingOverrides::validation_split splits as the graph's key does, 0 turns it "
    "off, a split outside 0 <= split < 1 is an error") {
  NamedTempDir dir("fg_arrays", "split");
  const ArrayData data = dense_arrays();
  Trainer keyed(dense_graph(dir.path + "/keyed", "0.25"), one_thread());
  TrainerOptions overridden = one_thread();
  overridden.overrides.validation_split = 0.25;
  Trainer by_override(dense_graph(dir.path + "/plain", ""), overridden);
  CHECK(by_override.config().validation_split == 0.25);
  check_same_history(keyed.fit(data).history, by_override.fit(data).history);
  check_same_weights(keyed.weights(), by_override.weights());

  TrainerOptions off = one_thread();
  off.overrides.validation_split = 0.0;
  Trainer unsplit(dense_graph(dir.path + "/keyed", "0.25"), off);
  const FitResult fit = unsplit.fit(data);
  CHECK(fit.history.back().samples == kSamples);
  CHECK_FALSE(has_log(fit.history.back().logs, "val_loss"));

  for (double bad : {-0.1, 1.0, 1.5, std::nan("")}) {
    CAPTURE(bad);
    TrainerOptions options = one_thread();
    options.overrides.validation_split = bad;
    check_message([&] { Trainer(dense_graph(dir.path + "/plain", ""), options); },
                  {"validation_split must be in [0, 1)"});
  }
}

TEST_CASE(
    "arrays: TrainerOptions::weights starts from weights in memory, more than one source "
    "is an error") {
  NamedTempDir dir("fg_arrays", "weights");
  const std::string graph = dense_graph(dir.path);
  const ArrayData data = dense_arrays();
  TrainerOptions seeded = one_thread();
  seeded.init_seed = 17;
  Trainer from_seed(graph, seeded);
  TrainerOptions in_memory = one_thread();
  in_memory.weights = Trainer(graph, seeded).weights();
  Trainer from_memory(graph, in_memory);
  check_same_weights(from_seed.weights(), from_memory.weights());
  check_same_history(from_seed.fit(data).history, from_memory.fit(data).history);
  check_same_weights(from_seed.weights(), from_memory.weights());
  // A different seed gives different weights (the test could fail).
  TrainerOptions other = one_thread();
  other.init_seed = 18;
  CHECK_FALSE(same_bytes(*Trainer(graph, other).weights().find("h.kernel"),
                         *in_memory.weights->find("h.kernel")));

  TrainerOptions two = in_memory;
  two.init_seed = 1;
  check_message([&] { Trainer(graph, two); },
                {"not more than one", "weights_file, init_seed, weights"});
  TrainerOptions file_and_memory = in_memory;
  file_and_memory.weights_file = dir.path + "/w.safetensors";
  check_message([&] { Trainer(graph, file_and_memory); }, {"not more than one"});
}

TEST_CASE(
    "arrays: Trainer::raw_inputs holds the vocabulary and classes the trainer adapted from "
    "its training table, as the saved checkpoint's RawInputs") {
  NamedTempDir dir("fg_arrays", "raw_inputs");
  const std::string graph = write_text(
      dir.path + "/graph.yaml",
      "name: text\ninputs:\n  text: {shape: [4], dtype: int32, preprocessing: {type: text, "
      "max_tokens: 10, output_sequence_length: 4}}\nnodes:\n"
      "  - {name: emb, op: embedding, input: text, input_dim: 10, output_dim: 2}\n"
      "  - {name: pooled, op: global_average_pooling1d, input: emb}\n"
      "  - {name: label, op: dense, input: pooled, units: 3, activation: softmax}\n"
      "outputs:\n  label: {preprocessing: {type: category}}\n"
      "training: {loss: sparse_categorical_crossentropy, optimizer: adam, batch_size: 4, "
      "epochs: 1}\n");
  // "boot" is the most frequent token (id 2; 0 pads, 1 is out of vocabulary); the classes
  // are the distinct labels, sorted.
  const std::string table = write_text(dir.path + "/train.csv",
                                       "text,label\nboot boot,shoe\nboot shirt,top\n"
                                       "leather boot,shoe\nsandal,shoe\nshirt long,top\n"
                                       "red scarf,wool\nboot,shoe\n");
  Trainer trainer(graph, one_thread());
  CHECK(trainer.raw_inputs().preprocessors().needs_adapt());
  check_message(
      [&] {
        trainer.raw_inputs().batch({{"text", {"boot"}}});
      },
      {"input 'text'", "the preprocessing given holds none", "fits on a table"});
  FitOptions fo;
  fo.save_path = dir.path + "/trained.safetensors";
  trainer.fit(table, fo);
  const RawInputs raw = trainer.raw_inputs();
  CHECK_FALSE(raw.preprocessors().needs_adapt());
  CHECK(raw.raw_input_names() == std::vector<std::string>{"text"});
  CHECK(raw.class_names("label") == std::vector<std::string>{"shoe", "top", "wool"});
  const Tensor ids = raw.batch({{"text", {"boot zebra"}}}).at("text");
  CHECK(std::vector<int32_t>(ids.data<int32_t>(), ids.data<int32_t>() + 4) ==
        std::vector<int32_t>{2, 1, 0, 0});
  CompileOptions co;
  co.weights_file = fo.save_path;
  const Session session = load(graph, co);
  const RawInputs saved(session, fo.save_path);
  const Tensor want = saved.batch({{"text", {"shirt boot leather scarf"}}}).at("text");
  const Tensor got = raw.batch({{"text", {"shirt boot leather scarf"}}}).at("text");
  CHECK(std::vector<int32_t>(got.data<int32_t>(), got.data<int32_t>() + 4) ==
        std::vector<int32_t>(want.data<int32_t>(), want.data<int32_t>() + 4));
}

namespace {

// Not an fg::Error, not even a std::exception's usual kind: it must come out of fit unchanged.
struct KeyboardInterrupt : std::runtime_error {
  KeyboardInterrupt() : std::runtime_error("interrupted at the keyboard") {}
};

// Throws KeyboardInterrupt after step `step` of epoch `epoch`; keeps the checkpoint's bytes as
// each epoch's end left them.
class InterruptAt : public TrainingCallback {
 public:
  InterruptAt(int64_t epoch, int64_t step, std::string checkpoint)
      : epoch_(epoch), step_(step), checkpoint_(std::move(checkpoint)) {}
  void on_batch_end(const BatchProgress& p) override {
    if (p.epoch == epoch_ && p.step == step_) throw KeyboardInterrupt();
  }
  void on_epoch_end(const EpochResult& e) override { saved_ = read_bytes(checkpoint_); }
  const std::string& saved() const { return saved_; }

 private:
  int64_t epoch_, step_;
  std::string checkpoint_, saved_;
};

int thread_count() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

}  // namespace

TEST_CASE(
    "arrays: a callback that throws from on_batch_end stops fit: the exception unchanged, the "
    "prefetch workers joined, the last epoch's checkpoint byte-identical, fit resumable") {
  NamedTempDir dir("fg_arrays", "interrupt");
  const std::string graph = write_text(
      dir.path + "/graph.yaml",
      "name: dense\ninputs: {x: {shape: [4]}}\nnodes:\n"
      "  - {name: out, op: dense, input: x, units: 3, activation: softmax}\noutputs: [out]\n"
      "training: {loss: categorical_crossentropy, optimizer: adam, batch_size: 2, epochs: 3, "
      "seed: 1}\n");
  const ArrayData data = dense_arrays(kSamples, 5);  // 7 batches an epoch, the last of 1
  TrainerOptions options = one_thread();
  options.workers = 2;  // batches in flight when the callback throws
  Trainer straight(graph, options);
  straight.fit(data);  // thread pools that live on are started by now
  const int threads_before = thread_count();
  REQUIRE(threads_before > 0);
  for (int64_t step : {1, 4, 7}) {
    CAPTURE(step);
    const std::string checkpoint = dir.path + fmt::format("/ckpt{}.safetensors", step);
    Trainer trainer(graph, options);
    InterruptAt interrupt(1, step, checkpoint);
    FitOptions fo;
    fo.save_path = checkpoint;
    fo.callbacks = {&interrupt};
    bool caught = false;
    try {
      trainer.fit(data, fo);
    } catch (const KeyboardInterrupt& e) {
      caught = true;
      CHECK(std::string(e.what()) == "interrupted at the keyboard");
    }
    CHECK(caught);
    CHECK(thread_count() == threads_before);
    REQUIRE_FALSE(interrupt.saved().empty());
    CHECK(read_bytes(checkpoint) == interrupt.saved());
    CHECK(trainer.initial_epoch() == 1);
    CHECK(trainer.history().size() == 1);
    // The checkpoint resumes to the weights of the fit that was not interrupted.
    Trainer resumed(graph, options);
    resumed.resume(checkpoint);
    CHECK(resumed.fit(data).history.size() == 2);
    check_same_weights(straight.weights(), resumed.weights());
  }
}

TEST_CASE(
    "arrays: open_array_data gathers shuffled rows converted as by hand (f64 -> f32, i64 -> "
    "i32), lists unused targets, keeps the arrays alive") {
  const std::shared_ptr<CompiledGraph> graph = compile_yaml(
      "name: two\ninputs: {x: {shape: [4]}, tokens: {shape: [3], dtype: int32}}\nnodes:\n"
      "  - {name: emb, op: embedding, input: tokens, input_dim: 10, output_dim: 2}\n"
      "  - {name: pooled, op: global_average_pooling1d, input: emb}\n"
      "  - {name: merged, op: concatenate, inputs: [x, pooled]}\n"
      "  - {name: out, op: dense, input: merged, units: 3, activation: softmax}\n"
      "  - {name: aux, op: dense, input: merged, units: 1}\noutputs: [out, aux]\n"
      "training: {loss: {out: sparse_categorical_crossentropy}}\n");
  const std::vector<OutputTraining> outputs =
      resolve_training_outputs(parse_training_config(*graph->def().training), *graph);
  Dataset data;
  {
    ArrayData arrays = token_arrays();
    arrays.targets["aux"] = host_array("<f4", {kSamples, 1}, std::vector<float>(13, 0.5f));
    data = open_array_data(arrays, *graph, outputs);
  }  // the arrays' owners are gone: the data set keeps them
  CHECK(data.size() == kSamples);
  CHECK(data.ignored() == std::vector<std::string>{"targets of output 'aux'"});
  CHECK(data.inputs()[0].stored == "'<f8' (13, 4)");
  CHECK(data.describe().find("arrays: 13 samples") != std::string::npos);
  const std::vector<double> x = features(kSamples, 4);
  const std::vector<int64_t> tokens = token_values(kSamples);
  const std::vector<int64_t> rows = {12, 0, 7, 7, 3};
  Batch batch;
  data.gather(rows, batch, 2);
  REQUIRE(batch.rows == 5);
  const Tensor& xs = *batch.input("x");
  const Tensor& ts = *batch.input("tokens");
  const Tensor& ids = *batch.target("out");
  CHECK(ts.dtype() == DType::i32);
  CHECK(ids.dtype() == DType::i32);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    for (int64_t k = 0; k < 4; ++k)
      CHECK(xs.data<float>()[i * 4 + k] == static_cast<float>(x[r * 4 + k]));
    for (int64_t k = 0; k < 3; ++k) CHECK(ts.data<int32_t>()[i * 3 + k] == tokens[r * 3 + k]);
    CHECK(ids.data<int32_t>()[i] == r % 3);
  }
}
