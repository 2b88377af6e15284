// Data folders (engine/training/dataset.hpp): opening a folder of .npy files against a graph,
// every error it reports, gathering shuffled rows into batches, slices, Keras's validation split
// and the seeded epoch order. Files are written by the tests (fg::write_npy, or raw headers for
// the dtypes write_npy does not write); expected rows are the values the tests wrote.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "engine/npy.hpp"
#include "engine/training/dataset.hpp"
#include "framework/compiler.hpp"
#include "framework/training_config.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::test::check_error;

// Two inputs (a [3, 2] float image, int32 tokens of any length) and two outputs: a 5-class
// softmax and a one-unit sigmoid. `training` is the training section's body.
std::string graph_yaml(const std::string& training) {
  return R"(name: t
inputs:
  image: {shape: [3, 2]}
  tokens: {shape: [null], dtype: int32}
nodes:
  - {name: flat, op: flatten, input: image}
  - {name: emb, op: embedding, input: tokens, input_dim: 50, output_dim: 4}
  - {name: pooled, op: global_average_pooling1d, input: emb}
  - {name: merged, op: concatenate, inputs: [flat, pooled]}
  - {name: classifier, op: dense, input: merged, units: 5, activation: softmax}
  - {name: score, op: dense, input: merged, units: 1, activation: sigmoid}
outputs: [classifier, score]
training:
)" + training;
}

const char* kSparseTraining =
    "  loss: {classifier: sparse_categorical_crossentropy, score: binary_crossentropy}\n";

struct Graph {
  std::shared_ptr<fg::CompiledGraph> compiled;
  std::vector<fg::OutputTraining> outputs;
};

Graph make_graph(const std::string& training = kSparseTraining) {
  Graph g;
  g.compiled = fg::test::compile_yaml(graph_yaml(training));
  g.outputs = fg::resolve_training_outputs(fg::parse_training_config(*g.compiled->def().training),
                                           *g.compiled);
  return g;
}

// An .npy file with any dtype: the header as numpy writes it, then `raw` data.
std::string npy_bytes(const std::string& descr, const std::string& shape, const std::string& raw) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  return std::string("\x93NUMPY\x01\x00", 8) + fg::test::le_bytes(header.size(), 2) + header + raw;
}

constexpr int kSamples = 7;

// image[r][i][j] = 100 r + 10 i + j; tokens[r][t] = (r + t) % 50 as int64, 4 per sample;
// classifier[r] = r % 5 (int32); score[r] = r / 8 as float64.
std::vector<float> image_values() {
  std::vector<float> v;
  for (int r = 0; r < kSamples; ++r)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j) v.push_back(100.f * r + 10.f * i + j);
  return v;
}
std::vector<int64_t> token_values() {
  std::vector<int64_t> v;
  for (int r = 0; r < kSamples; ++r)
    for (int t = 0; t < 4; ++t) v.push_back((r + t) % 50);
  return v;
}
std::vector<int32_t> class_values() {
  std::vector<int32_t> v;
  for (int r = 0; r < kSamples; ++r) v.push_back(r % 5);
  return v;
}
std::vector<double> score_values() {
  std::vector<double> v;
  for (int r = 0; r < kSamples; ++r) v.push_back(r / 8.0);
  return v;
}

// A valid folder: image.npy ('<f4' via write_npy), tokens.npy ('<i8'), classifier.npy ('<i4'
// via write_npy), score.npy ('<f8', shape (7,) for the (None, 1) output), and stray entries.
struct Folder {
  fg::test::TempDir dir;
  std::string path() const { return dir.path().string(); }
  std::string file(const std::string& name) const { return dir.file(name); }

  Folder() {
    fg::write_npy(file("image.npy"), fg::test::make_tensor({kSamples, 3, 2}, image_values()));
    fg::test::write_bytes(file("tokens.npy"),
                          npy_bytes("<i8", "(7, 4)", fg::test::raw_of(token_values())));
    const std::vector<int32_t> classes = class_values();
    std::vector<int> ids(classes.begin(), classes.end());
    fg::write_npy(file("classifier.npy"), fg::test::make_int_tensor({kSamples}, ids));
    fg::test::write_bytes(file("score.npy"),
                          npy_bytes("<f8", "(7,)", fg::test::raw_of(score_values())));
    fg::test::write_bytes(file("notes.txt"), "not data");
    fg::write_npy(file("extra.npy"), fg::test::make_tensor({2}, {1, 2}));
    std::filesystem::create_directory(dir.path() / "sub");
  }
  void write(const std::string& name, const std::string& descr, const std::string& shape,
             const std::string& raw) const {
    fg::test::write_bytes(file(name), npy_bytes(descr, shape, raw));
  }
};

fg::Dataset open(const Folder& f, const Graph& g = make_graph()) {
  return fg::open_npy_folder(f.path(), *g.compiled, g.outputs);
}

}  // namespace

TEST_CASE("data folder: opens with every field's dtype and per-sample shape, strays listed") {
  Folder f;
  fg::Dataset data = open(f);
  CHECK(data.size() == kSamples);
  REQUIRE(data.inputs().size() == 2);
  CHECK(data.inputs()[0].name == "image");
  CHECK(data.inputs()[0].dtype == fg::DType::f32);
  CHECK(data.inputs()[0].sample_shape == fg::Dims{3, 2});
  CHECK(data.inputs()[1].name == "tokens");
  CHECK(data.inputs()[1].dtype == fg::DType::i32);
  CHECK(data.inputs()[1].sample_shape == fg::Dims{4});  // the null dim takes the file's size
  CHECK(data.inputs()[1].stored == "'<i8' (7, 4)");
  REQUIRE(data.targets().size() == 2);
  CHECK(data.targets()[0].name == "classifier");
  CHECK(data.targets()[0].sparse);
  CHECK(data.targets()[0].dtype == fg::DType::i32);
  CHECK(data.targets()[0].sample_shape == fg::Dims{});
  CHECK(data.targets()[1].name == "score");
  CHECK_FALSE(data.targets()[1].sparse);
  CHECK(data.targets()[1].sample_shape == fg::Dims{1});  // (7,) expanded to the output's (7, 1)
  CHECK(data.ignored() == std::vector<std::string>{"extra.npy", "notes.txt", "sub/"});
  CHECK(data.input_shapes(32) == std::vector<fg::Dims>{{32, 3, 2}, {32, 4}});
  const std::string text = data.describe();
  CHECK(text.find("7 samples") != std::string::npos);
  CHECK(text.find("notes.txt: ignored") != std::string::npos);
}

TEST_CASE("data folder: gather copies shuffled rows, converting dtypes, into reused tensors") {
  Folder f;
  fg::Dataset data = open(f);
  const std::vector<int64_t> rows = {6, 0, 3, 3};
  fg::Batch batch;
  for (int threads : {1, 2}) {
    data.gather(rows, batch, threads);
    REQUIRE(batch.rows == 4);
    REQUIRE(batch.input_names == std::vector<std::string>{"image", "tokens"});
    REQUIRE(batch.target_names == std::vector<std::string>{"classifier", "score"});
    const fg::Tensor& image = *batch.input("image");
    CHECK(image.shape() == fg::Dims{4, 3, 2});
    for (size_t b = 0; b < rows.size(); ++b)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j)
          CHECK(image.data<float>()[b * 6 + i * 2 + j] == 100.f * rows[b] + 10.f * i + j);
    const fg::Tensor& tokens = *batch.input("tokens");
    CHECK(tokens.dtype() == fg::DType::i32);
    for (size_t b = 0; b < rows.size(); ++b)
      for (int t = 0; t < 4; ++t) CHECK(tokens.data<int32_t>()[b * 4 + t] == (rows[b] + t) % 50);
    const fg::Tensor& ids = *batch.target("classifier");
    CHECK(ids.shape() == fg::Dims{4});
    CHECK(std::vector<int32_t>(ids.data<int32_t>(), ids.data<int32_t>() + 4) ==
          std::vector<int32_t>{1, 0, 3, 3});
    const fg::Tensor& score = *batch.target("score");
    CHECK(score.shape() == fg::Dims{4, 1});
    CHECK(std::vector<float>(score.data<float>(), score.data<float>() + 4) ==
          std::vector<float>{0.75f, 0.f, 0.375f, 0.375f});
    CHECK(batch.input("nothing") == nullptr);
  }
  // The same shape again: the tensors are written in place, not reallocated.
  const void* image_data = batch.inputs[0].raw();
  const void* ids_data = batch.targets[0].raw();
  data.gather(std::vector<int64_t>{1, 2, 4, 5}, batch);
  CHECK(batch.inputs[0].raw() == image_data);
  CHECK(batch.targets[0].raw() == ids_data);
  CHECK(batch.inputs[0].data<float>()[0] == 100.f);
  // A partial last batch gets tensors of its own size.
  data.gather(std::vector<int64_t>{2}, batch);
  CHECK(batch.inputs[0].shape() == fg::Dims{1, 3, 2});
  CHECK(batch.inputs[0].data<float>()[5] == 221.f);
}

TEST_CASE("data folder: a sample of 127 floats per row, odd batch sizes, both thread counts") {
  fg::test::TempDir dir;
  auto graph = fg::test::compile_yaml(R"(name: t
inputs:
  x: {shape: [127]}
nodes:
  - {name: y, op: dense, input: x, units: 13}
outputs: [y]
training:
  loss: mse
)");
  auto outputs =
      fg::resolve_training_outputs(fg::parse_training_config(*graph->def().training), *graph);
  std::vector<double> x(13 * 127), y(13 * 13);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5 * static_cast<double>(i);
  for (size_t i = 0; i < y.size(); ++i) y[i] = -static_cast<double>(i);
  fg::test::write_bytes(dir.file("x.npy"), npy_bytes("<f8", "(13, 127)", fg::test::raw_of(x)));
  fg::test::write_bytes(dir.file("y.npy"), npy_bytes("<f8", "(13, 13)", fg::test::raw_of(y)));
  fg::Dataset data = fg::open_npy_folder(dir.path().string(), *graph, outputs);
  const std::vector<int64_t> rows = {12, 0, 7, 7, 3, 11, 1};
  for (int threads : {1, 2}) {
    fg::Batch batch;
    data.gather(rows, batch, threads);
    for (size_t b = 0; b < rows.size(); ++b) {
      for (int k = 0; k < 127; ++k)
        REQUIRE(batch.inputs[0].data<float>()[b * 127 + k] == 0.5f * (rows[b] * 127 + k));
      for (int k = 0; k < 13; ++k)
        REQUIRE(batch.targets[0].data<float>()[b * 13 + k] == -float(rows[b] * 13 + k));
    }
  }
}

TEST_CASE("data folder: slices are the samples from begin to end, as validation_split takes them") {
  Folder f;
  fg::Dataset data = open(f);
  const int64_t split = fg::validation_split_at(data.size(), 0.3);  // floor(7 * 0.7) = 4
  CHECK(split == 4);
  fg::Dataset train = data.slice(0, split), validation = data.slice(split, data.size());
  CHECK(train.size() == 4);
  CHECK(validation.size() == 3);
  fg::Batch batch;
  validation.gather(std::vector<int64_t>{2, 0}, batch);
  CHECK(batch.inputs[0].data<float>()[0] == 600.f);  // sample 6
  CHECK(batch.inputs[0].data<float>()[6] == 400.f);  // sample 4
  CHECK(validation.slice(1, 2).size() == 1);
  validation.slice(1, 2).gather(std::vector<int64_t>{0}, batch);
  CHECK(batch.inputs[0].data<float>()[0] == 500.f);
  check_error([&] { validation.gather(std::vector<int64_t>{3}, batch); },
              {"row 3", "outside the data set's 3 samples"});
  check_error([&] { validation.gather(std::vector<int64_t>{-1}, batch); }, {"row -1"});
  check_error([&] { validation.gather(nullptr, 0, batch); }, {"at least one row"});
  check_error([&] { data.slice(5, 8); }, {"[5, 8)", "7 samples"});
  check_error([&] { data.slice(3, 3); }, {"[3, 3)"});
}

TEST_CASE("validation_split_at: Keras's floor(samples * (1 - split)), both parts non-empty") {
  CHECK(fg::validation_split_at(10, 0.1) == 9);
  CHECK(fg::validation_split_at(10, 0.25) == 7);
  CHECK(fg::validation_split_at(13, 0.5) == 6);
  CHECK(fg::validation_split_at(127, 0.2) == 101);
  CHECK(fg::validation_split_at(5, 0.01) == 4);  // floor(4.95)
  check_error([] { fg::validation_split_at(1, 0.5); }, {"1 samples", "not enough"});
  // 1 - 1e-17 rounds to 1: nothing would be left to validate (Keras raises too)
  check_error([] { fg::validation_split_at(10, 1e-17); }, {"10 samples"});
  check_error([] { fg::validation_split_at(10, 0.0); }, {"(0, 1)"});
}

TEST_CASE("epoch_order: a permutation fixed by seed and epoch, uniform over permutations") {
  for (int64_t n : {0, 1, 7, 13, 127}) {
    const auto order = fg::epoch_order(n, 42, 3, true);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> iota(static_cast<size_t>(n));
    std::iota(iota.begin(), iota.end(), 0);
    CHECK(sorted == iota);
    CHECK(fg::epoch_order(n, 42, 3, false) == iota);
    CHECK(fg::epoch_order(n, 42, 3, true) == order);  // resume sees the same order
  }
  const auto a = fg::epoch_order(127, 42, 0, true);
  CHECK(a != fg::epoch_order(127, 42, 1, true));
  CHECK(a != fg::epoch_order(127, 43, 0, true));
  // Each of the 6 orders of 3 samples about equally often over 6000 epochs: 1000 +- 70, 2.4
  // standard deviations (the draws are deterministic, so this never flakes). A biased shuffle
  // (swapping with any position) gives 630 to 1393 here.
  std::map<std::vector<int64_t>, int> counts;
  for (int64_t epoch = 0; epoch < 6000; ++epoch) ++counts[fg::epoch_order(3, 7, epoch, true)];
  CHECK(counts.size() == 6);
  for (const auto& [order, count] : counts) {
    INFO(count);
    CHECK(count > 930);
    CHECK(count < 1070);
  }
  check_error([] { fg::epoch_order(-1, 0, 0, true); }, {"-1 samples"});
}

TEST_CASE("data folder errors: the folder itself, missing files listing the folder") {
  Graph g = make_graph();
  check_error([&] { fg::open_npy_folder("/nonexistent/fg_data", *g.compiled, g.outputs); },
              {"/nonexistent/fg_data", "does not exist"});
  Folder f;
  check_error([&] { fg::open_npy_folder(f.file("notes.txt"), *g.compiled, g.outputs); },
              {"notes.txt", "not a folder"});
  std::filesystem::rename(f.file("tokens.npy"), f.file("Tokens.npy"));
  check_error([&] { open(f, g); },
              {"no tokens.npy for input 'tokens'",
               "the folder holds 'Tokens.npy', "
               "'classifier.npy', 'extra.npy', 'image.npy', 'notes.txt', 'score.npy', 'sub/'",
               "did you mean 'Tokens.npy'"});
  std::filesystem::rename(f.file("Tokens.npy"), f.file("tokens.npy"));
  std::filesystem::remove(f.file("score.npy"));
  check_error([&] { open(f, g); }, {"no score.npy for targets of output 'score'"});
  {
    fg::test::TempDir crowded;  // a long listing is cut after 20 entries
    for (int i = 0; i < 25; ++i)
      fg::test::write_bytes(crowded.file(fmt::format("f{:02d}.txt", i)), "x");
    check_error([&] { fg::open_npy_folder(crowded.path().string(), *g.compiled, g.outputs); },
                {"no image.npy for input 'image'", "'f18.txt', 'f19.txt' and 5 more"});
  }
  // Prediction needs no targets.
  fg::DatasetOptions inputs_only;
  inputs_only.targets = false;
  fg::Dataset data = fg::open_npy_folder(f.path(), *g.compiled, g.outputs, inputs_only);
  CHECK(data.targets().empty());
  CHECK(data.size() == kSamples);
  // An output that is not trained (no loss, no metrics) needs no file.
  Graph only_classifier = make_graph("  loss: {classifier: sparse_categorical_crossentropy}\n");
  CHECK(open(f, only_classifier).targets().size() == 1);
}

TEST_CASE("data folder errors: dtypes, per-sample shapes, lengths, no samples") {
  Graph g = make_graph();
  const std::string floats28 = fg::test::raw_of(std::vector<float>(28, 1.f));
  {
    Folder f;
    f.write("tokens.npy", "<f4", "(7, 4)", floats28);
    check_error([&] { open(f, g); }, {"tokens.npy", "input 'tokens'", "int32",
                                      "floating-point '<f4'", "astype(np.int32)"});
  }
  {
    Folder f;
    f.write("classifier.npy", "<f4", "(7,)", fg::test::raw_of(std::vector<float>(7, 1.f)));
    check_error([&] { open(f, g); },
                {"classifier.npy", "targets of output 'classifier'", "int class ids", "'<f4'"});
  }
  {
    Folder f;
    f.write("image.npy", "<f4", "(7, 3, 3)", fg::test::raw_of(std::vector<float>(63, 1.f)));
    check_error([&] { open(f, g); }, {"image.npy", "input 'image'", "samples of shape (3, 3)",
                                      "(7, 3, 3)", "declared shape (3, 2)"});
  }
  {
    Folder f;
    f.write("image.npy", "<f4", "(7, 6)", fg::test::raw_of(std::vector<float>(42, 1.f)));
    check_error([&] { open(f, g); }, {"input 'image'", "samples of shape (6,)"});
  }
  {
    Folder f;
    f.write("score.npy", "<f8", "(7, 2)", fg::test::raw_of(std::vector<double>(14, 1.0)));
    check_error([&] { open(f, g); },
                {"score.npy", "targets of output 'score'", "targets of shape (2,)",
                 "output (None, 1)", "expected (1,)"});
  }
  {
    Folder f;
    f.write("classifier.npy", "<i4", "(7, 2)", fg::test::raw_of(std::vector<int32_t>(14, 1)));
    check_error([&] { open(f, g); }, {"targets of output 'classifier'", "class ids of shape (2,)",
                                      "expected () or (1,)"});
  }
  {
    Folder f;
    f.write("classifier.npy", "<i4", "(6,)", fg::test::raw_of(std::vector<int32_t>(6, 1)));
    check_error([&] { open(f, g); }, {"image.npy holds 7 samples but classifier.npy holds 6",
                                      "input 'image' vs targets of output 'classifier'"});
  }
  {
    Folder f;
    f.write("image.npy", "<f4", "(0, 3, 2)", "");
    check_error([&] { open(f, g); }, {"image.npy", "input 'image'", "no samples"});
  }
  {
    Folder f;
    f.write("image.npy", "<f4", "()", fg::test::raw_of(std::vector<float>{1.f}));
    check_error([&] { open(f, g); }, {"input 'image'", "0-d array"});
  }
  {
    Folder f;
    fg::test::write_bytes(f.file("image.npy"), "PK\x03\x04 a zip, not an npy");
    check_error([&] { open(f, g); }, {"image.npy", "input 'image'", "not an .npy file"});
  }
  {
    Folder f;  // the data region shorter than the header says
    f.write("image.npy", "<f4", "(7, 3, 2)", fg::test::raw_of(std::vector<float>(41, 1.f)));
    check_error([&] { open(f, g); }, {"image.npy", "truncated"});
  }
}

TEST_CASE("data folder errors: class ids out of range name the row, class ids as dense targets") {
  Graph g = make_graph();
  {
    Folder f;
    f.write("classifier.npy", "<i8", "(7, 1)",
            fg::test::raw_of(std::vector<int64_t>{0, 1, 2, 3, 5, 4, 0}));
    check_error([&] { open(f, g); }, {"classifier.npy", "targets of output 'classifier'",
                                      "row 4 holds class id 5", "outside [0, 5)", "5 classes"});
  }
  {
    Folder f;
    f.write("classifier.npy", "<i4", "(7,)",
            fg::test::raw_of(std::vector<int32_t>{0, 1, 2, 3, 4, 4, -1}));
    check_error([&] { open(f, g); }, {"row 6 holds class id -1"});
  }
  {
    Folder f;  // class ids given to categorical_crossentropy
    Graph categorical =
        make_graph("  loss: {classifier: categorical_crossentropy, score: binary_crossentropy}\n");
    check_error([&] { open(f, categorical); },
                {"targets of output 'classifier'", "targets of shape ()", "expected (5,)",
                 "sparse_categorical_crossentropy", "np.eye(classes)[ids]"});
  }
  {
    Folder f;  // one-hot targets for categorical_crossentropy: ints convert to floats
    Graph categorical =
        make_graph("  loss: {classifier: categorical_crossentropy, score: binary_crossentropy}\n");
    std::vector<int64_t> onehot(7 * 5, 0);
    for (int r = 0; r < 7; ++r) onehot[r * 5 + (r % 5)] = 1;
    f.write("classifier.npy", "<i8", "(7, 5)", fg::test::raw_of(onehot));
    fg::Dataset data = open(f, categorical);
    fg::Batch batch;
    data.gather(std::vector<int64_t>{3}, batch);
    const fg::Tensor& t = *batch.target("classifier");
    CHECK(t.dtype() == fg::DType::f32);
    CHECK(std::vector<float>(t.data<float>(), t.data<float>() + 5) ==
          std::vector<float>{0, 0, 0, 1, 0});
  }
  {
    Folder f;  // int64 tokens beyond int32: an error when the row is read, naming it
    std::vector<int64_t> tokens = token_values();
    tokens[5 * 4 + 2] = int64_t(1) << 40;
    f.write("tokens.npy", "<i8", "(7, 4)", fg::test::raw_of(tokens));
    fg::Dataset data = open(f, g);
    fg::Batch batch;
    data.gather(std::vector<int64_t>{0, 1}, batch);
    check_error(
        [&] {
          data.gather(std::vector<int64_t>{0, 5, 1}, batch, 2);
        },
        {"tokens.npy", "input 'tokens'", "row 5", "does not fit into int32"});
  }
  {
    Folder f;  // a null dim whose size the graph cannot take: no tokens at all is caught
    f.write("tokens.npy", "<i8", "(7, 0)", "");
    check_error([&] { open(f, g); }, {"input 'tokens'", "dimension 1 of the samples is 0"});
  }
}

TEST_CASE("data folder: opening maps the files and reads no sample data (16 GiB, sparse)") {
  // 4096 samples of 2^20 floats: a 16 GiB file that holds no blocks on disk (ftruncate). Opening
  // it must touch only its header; reading it all faults in 16 GiB of zero pages (over 8000
  // page faults here, with the kernel's fault-around, and two minutes).
  fg::test::TempDir dir;
  auto graph = fg::test::compile_yaml(R"(name: big
inputs:
  x: {shape: [1048576]}
nodes:
  - {name: y, op: dense, input: x, units: 1}
outputs: [y]
training:
  loss: mse
)");
  auto outputs =
      fg::resolve_training_outputs(fg::parse_training_config(*graph->def().training), *graph);
  const std::string header = npy_bytes("<f4", "(4096, 1048576)", "");
  const std::string path = dir.file("x.npy");
  fg::test::write_bytes(path, header);
  const off_t sample_bytes = off_t(1) << 22;
  {
    int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(header.size()) + 4096 * sample_bytes) == 0);
    const float marker[2] = {3.5f, -2.f};  // the first floats of sample 4095
    REQUIRE(::pwrite(fd, marker, sizeof marker,
                     static_cast<off_t>(header.size()) + 4095 * sample_bytes) == sizeof marker);
    ::close(fd);
  }
  std::vector<float> y(4096);
  for (int i = 0; i < 4096; ++i) y[i] = static_cast<float>(i);
  fg::test::write_bytes(dir.file("y.npy"), npy_bytes("<f4", "(4096, 1)", fg::test::raw_of(y)));

  auto faults = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt + usage.ru_majflt;
  };
  const long before = faults();
  fg::Dataset data = fg::open_npy_folder(dir.path().string(), *graph, outputs);
  const long during_open = faults() - before;
  CHECK(data.size() == 4096);
  CHECK(during_open < 1000);  // measured here: under 10; reading the data: over 8000
  fg::Batch batch;
  data.gather(std::vector<int64_t>{4095, 7}, batch, 2);
  CHECK(batch.inputs[0].data<float>()[0] == 3.5f);
  CHECK(batch.inputs[0].data<float>()[1] == -2.f);
  CHECK(batch.inputs[0].data<float>()[2] == 0.f);
  CHECK(batch.inputs[0].data<float>()[1048576] == 0.f);
  CHECK(batch.targets[0].data<float>()[0] == 4095.f);
  CHECK(batch.targets[0].data<float>()[1] == 7.f);
}
