// Data sets from tables (engine/data/table_source.hpp), the batch prefetcher and the cache:
// values from the files the tests wrote, the checks of every row at open (each message naming
// the table, row, column and file), --skip-bad-rows, worker-count invariance, and a cache that
// is used when fresh and rebuilt when stale.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/data/batch_prefetcher.hpp"
#include "engine/data/preprocessors.hpp"
#include "engine/npy.hpp"
#include "engine/training/dataset.hpp"
#include "framework/compiler.hpp"
#include "framework/training_config.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::test::check_error;
using fg::test::TempDir;
using fg::test::write_bytes;

// x: 3 floats from a .npy per sample; text: 4 token ids; classifier: 3 classes.
std::string graph_yaml(const std::string& loss, const std::string& text_shape = "[4]") {
  return fmt::format(R"(name: t
inputs:
  x: {{shape: [3]}}
  text: {{shape: {}, dtype: int32}}
nodes:
  - {{name: emb, op: embedding, input: text, input_dim: 20, output_dim: 2}}
  - {{name: pooled, op: global_average_pooling1d, input: emb}}
  - {{name: merged, op: concatenate, inputs: [x, pooled]}}
  - {{name: classifier, op: dense, input: merged, units: 3, activation: softmax}}
outputs: [classifier]
training:
  loss: {}
)",
                     text_shape, loss);
}

// The vocabulary as the weights' state would give it (ids from 2 in this order).
void set_vocabulary(fg::Preprocessors& pre, const std::vector<std::string>& words) {
  std::string list;
  for (const auto& w : words) list += (list.empty() ? "\"" : ", \"") + w + "\"";
  pre.load_state_json(
      "{\"format\": \"fusiongraph-preprocessing-1\", \"text\": {\"text\": {\"vocabulary\": [" +
          list + "]}}}",
      "test");
}

struct Setup {
  std::shared_ptr<fg::CompiledGraph> graph;
  std::vector<fg::OutputTraining> outputs;
  std::shared_ptr<fg::Preprocessors> pre;
};

Setup make_setup(const std::string& loss = "sparse_categorical_crossentropy",
                 std::optional<int64_t> sequence_length = 4,
                 const std::string& text_shape = "[4]") {
  Setup s;
  s.graph = fg::test::compile_yaml(graph_yaml(loss, text_shape));
  s.outputs =
      fg::resolve_training_outputs(fg::parse_training_config(*s.graph->def().training), *s.graph);
  fg::PreprocessingConfig c;
  fg::TextPreprocessing text;
  text.output_sequence_length = sequence_length;
  c.fields.push_back({"text", false, text, {}});
  c.fields.push_back({"classifier", true, fg::CategoryPreprocessing{{"bag", "coat", "shirt"}}, {}});
  s.pre = std::make_shared<fg::Preprocessors>(c, "");
  set_vocabulary(*s.pre, {"red", "blue", "green"});
  return s;
}

// x{i}.npy holds [i, i + 0.5, -i]; the table's rows name them.
std::string write_samples(const TempDir& dir, int rows) {
  std::string csv = "x,text,classifier\n";
  const char* labels[] = {"bag", "coat", "shirt"};
  const char* words[] = {"red", "blue green", "green green red zzz"};
  for (int i = 0; i < rows; ++i) {
    fg::Tensor t(fg::DType::f32, {3});
    float* p = t.mutable_data<float>();
    p[0] = static_cast<float>(i);
    p[1] = i + 0.5f;
    p[2] = -static_cast<float>(i);
    fg::write_npy(dir.file(fmt::format("x{}.npy", i)), t);
    csv += fmt::format("x{}.npy,{},{}\n", i, words[i % 3], labels[(i * 2) % 3]);
  }
  return csv;
}

fg::Dataset open(const Setup& s, const std::string& path, bool skip = false,
                 const std::string& cache = "") {
  fg::DatasetOptions o;
  o.preprocessors = s.pre;
  o.skip_bad_rows = skip;
  o.workers = 2;
  o.cache_dir = cache;
  return fg::open_dataset(path, *s.graph, s.outputs, o);
}

std::vector<std::string> batch_bytes(const fg::Dataset& data, int workers, int64_t batch) {
  fg::BatchPrefetcher p(data, fg::epoch_order(data.size(), 7, 1, true), batch, workers);
  std::vector<std::string> out;
  while (const fg::Batch* b = p.next()) {
    std::string bytes;
    for (const auto* part : {&b->inputs, &b->targets})
      for (const fg::Tensor& t : *part) bytes.append(static_cast<const char*>(t.raw()), t.bytes());
    out.push_back(bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("table source: inputs from .npy files and text, class names to ids") {
  TempDir dir;
  write_bytes(dir.file("t.csv"), write_samples(dir, 5));
  const Setup s = make_setup();
  const fg::Dataset data = open(s, dir.file("t.csv"));
  REQUIRE(data.size() == 5);
  fg::Batch b;
  data.gather({4, 1}, b, 1);
  const float* x = b.input("x")->data<float>();
  CHECK(std::vector<float>(x, x + 6) == std::vector<float>{4, 4.5f, -4, 1, 1.5f, -1});
  const int32_t* ids = b.input("text")->data<int32_t>();
  // vocabulary red 2, blue 3, green 4; row 4 "blue green", row 1 "blue green".
  CHECK(std::vector<int32_t>(ids, ids + 4) == std::vector<int32_t>{3, 4, 0, 0});
  const fg::Tensor* y = b.target("classifier");
  CHECK(y->shape() == fg::Dims{2});
  CHECK(y->data<int32_t>()[0] == 2);  // row 4: labels[8 % 3] = shirt
  CHECK(y->data<int32_t>()[1] == 2);  // row 1: labels[2] = shirt
}

TEST_CASE("table source: one-hot targets for categorical_crossentropy, JSON lines") {
  TempDir dir;
  write_samples(dir, 2);
  write_bytes(dir.file("t.jsonl"),
              "{\"x\": \"x0.npy\", \"text\": \"red\", \"classifier\": \"coat\"}\n"
              "{\"x\": \"x1.npy\", \"text\": \"blue\", \"classifier\": \"bag\"}\n");
  const Setup s = make_setup("categorical_crossentropy");
  fg::Batch b;
  open(s, dir.file("t.jsonl")).gather({0, 1}, b, 1);
  const float* y = b.target("classifier")->data<float>();
  CHECK(std::vector<float>(y, y + 6) == std::vector<float>{0, 1, 0, 1, 0, 0});
}

TEST_CASE("table source: numeric targets (space-separated in CSV, arrays in JSON lines)") {
  TempDir dir;
  write_samples(dir, 2);
  write_bytes(dir.file("t.csv"), "x,text,classifier\nx0.npy,red,0.25 0.5 0.25\nx1.npy,red,1 0 0\n");
  write_bytes(dir.file("t.jsonl"),
              "{\"x\": \"x0.npy\", \"text\": \"red\", \"classifier\": [0.25, 0.5, 0.25]}\n");
  Setup s = make_setup("mean_squared_error");
  fg::PreprocessingConfig c;  // no category: numbers
  fg::TextPreprocessing text;
  text.output_sequence_length = 4;
  c.fields.push_back({"text", false, text, {}});
  s.pre = std::make_shared<fg::Preprocessors>(c, "");
  set_vocabulary(*s.pre, {"red"});
  fg::Batch b;
  open(s, dir.file("t.csv")).gather({0, 1}, b, 1);
  const float* y = b.target("classifier")->data<float>();
  CHECK(std::vector<float>(y, y + 6) == std::vector<float>{0.25f, 0.5f, 0.25f, 1, 0, 0});
  open(s, dir.file("t.jsonl")).gather({0}, b, 1);
  CHECK(b.target("classifier")->data<float>()[1] == 0.5f);
  write_bytes(dir.file("bad.csv"), "x,text,classifier\nx0.npy,red,0.25 0.5\n");
  check_error([&] { open(s, dir.file("bad.csv")); },
              {"bad.csv row 1 (line 2), column 'classifier'", "2 numbers", "takes 3"});
}

TEST_CASE("table source: every row is checked at open, naming table, row, column and file") {
  TempDir dir;
  const std::string good = write_samples(dir, 3);
  const Setup s = make_setup();
  const std::string t = dir.file("t.csv");
  write_bytes(t, "x,label,classifier\nx0.npy,red,bag\n");
  check_error([&] { open(s, t); }, {t, "no column 'text' for input 'text'", "'x', 'label'"});
  write_bytes(t, good + "x9.npy,red,bag\n");
  check_error([&] { open(s, t); }, {t + " row 4 (line 5), column 'x'", "x9.npy", "no such file"});
  write_bytes(t, good + ",red,bag\n");
  check_error([&] { open(s, t); }, {t + " row 4 (line 5), column 'x'", "the cell is empty"});
  write_bytes(t, good + "x1.npy,red,hat\n");
  check_error([&] { open(s, t); }, {t + " row 4 (line 5), column 'classifier'", "hat"});
  write_bytes(t, good +
                     "x1.npy,r\xC3\x28"
                     "d,bag\n");
  check_error([&] { open(s, t); },
              {t + " row 4 (line 5), column 'text'", "not valid UTF-8 at byte 1"});
  write_bytes(t, good + "x1.npy,red,\n");
  check_error([&] { open(s, t); }, {t + " row 4 (line 5), column 'classifier'", "empty"});
  // Decoded at read time: a .npy of another shape.
  fg::write_npy(dir.file("wide.npy"), fg::Tensor(fg::DType::f32, {4}));
  write_bytes(t, good + "wide.npy,red,bag\n");
  fg::Batch b;
  const fg::Dataset data = open(s, t);
  check_error([&] { data.gather({3}, b, 1); },
              {t + " row 4 (line 5), column 'x'", "wide.npy", "holds shape (4,)"});
}

TEST_CASE("table source: --skip-bad-rows lists every skipped row") {
  TempDir dir;
  std::string csv = write_samples(dir, 4);
  fg::write_npy(dir.file("wide.npy"), fg::Tensor(fg::DType::f32, {4}));
  csv += "gone.npy,red,bag\nwide.npy,red,bag\nx1.npy,red,hat\n";
  write_bytes(dir.file("t.csv"), csv);
  const Setup s = make_setup();
  const fg::Dataset data = open(s, dir.file("t.csv"), /*skip=*/true);
  CHECK(data.size() == 4);
  const std::vector<std::string> skipped = data.skipped();
  REQUIRE(skipped.size() == 3);
  CHECK(skipped[0].find("row 5 (line 6), column 'x'") != std::string::npos);
  CHECK(skipped[0].find("gone.npy") != std::string::npos);
  CHECK(skipped[1].find("row 6 (line 7), column 'x'") != std::string::npos);
  CHECK(skipped[1].find("wide.npy") != std::string::npos);
  CHECK(skipped[2].find("row 7 (line 8), column 'classifier'") != std::string::npos);
  fg::Batch b;
  data.gather({3}, b, 1);
  CHECK(b.input("x")->data<float>()[0] == 3.f);
}

TEST_CASE("table source: null sequence lengths cannot be batched") {
  TempDir dir;
  write_bytes(dir.file("t.csv"), write_samples(dir, 1));
  const Setup s = make_setup("sparse_categorical_crossentropy", std::nullopt, "[null]");
  check_error([&] { open(s, dir.file("t.csv")); },
              {"input 'text'", "cannot be batched", "set output_sequence_length"});
}

TEST_CASE("prefetcher: batches do not depend on the worker count") {
  TempDir dir;
  write_bytes(dir.file("t.csv"), write_samples(dir, 13));
  const Setup s = make_setup();
  const fg::Dataset data = open(s, dir.file("t.csv"));
  const auto one = batch_bytes(data, 1, 4);
  REQUIRE(one.size() == 4);  // 4 + 4 + 4 + 1
  CHECK(batch_bytes(data, 3, 4) == one);
  CHECK(batch_bytes(data, 7, 4) == one);
  // Direct gathers in the same order give the same bytes.
  const std::vector<int64_t> order = fg::epoch_order(13, 7, 1, true);
  fg::Batch b;
  data.gather(order.data() + 12, 1, b, 1);
  CHECK(std::memcmp(b.inputs[0].raw(), one[3].data(), b.inputs[0].bytes()) == 0);
}

TEST_CASE("prefetcher: a batch that fails to decode throws when its turn comes") {
  TempDir dir;
  std::string csv = write_samples(dir, 6);
  fg::write_npy(dir.file("wide.npy"), fg::Tensor(fg::DType::f32, {4}));
  write_bytes(dir.file("t.csv"), csv + "wide.npy,red,bag\n");
  const Setup s = make_setup();
  const fg::Dataset data = open(s, dir.file("t.csv"));
  fg::BatchPrefetcher p(data, fg::epoch_order(7, 0, 0, false), 3, 3);
  CHECK(p.next() != nullptr);
  CHECK(p.next() != nullptr);
  check_error([&] { p.next(); }, {"row 7 (line 8), column 'x'", "wide.npy"});
}

TEST_CASE("cache: used when fresh, rebuilt when the table changes") {
  TempDir dir;
  const std::string csv = write_samples(dir, 9);
  write_bytes(dir.file("t.csv"), csv);
  const Setup s = make_setup();
  const std::string cache = dir.file("cache");
  const auto plain = batch_bytes(open(s, dir.file("t.csv")), 2, 4);
  CHECK(batch_bytes(open(s, dir.file("t.csv"), false, cache), 2, 4) == plain);
  REQUIRE(std::filesystem::exists(cache + "/manifest.json"));
  // A fresh cache is read, not rebuilt: change a shard's value and see it.
  const std::string shard = cache + "/shard-00000-0.npy";
  fg::Tensor x = fg::read_npy(shard, fg::DType::f32);
  fg::Tensor changed(fg::DType::f32, x.shape());
  std::memcpy(changed.mutable_data<float>(), x.data<float>(), x.bytes());
  changed.mutable_data<float>()[0] = 99.f;
  fg::write_npy(shard, changed);
  fg::Batch b;
  open(s, dir.file("t.csv"), false, cache).gather({0}, b, 1);
  CHECK(b.input("x")->data<float>()[0] == 99.f);
  // A changed table gives another checksum: rebuilt from the files.
  write_bytes(dir.file("t.csv"), csv + "\n");
  open(s, dir.file("t.csv"), false, cache).gather({0}, b, 1);
  CHECK(b.input("x")->data<float>()[0] == 0.f);
  // So does other preprocessing state.
  Setup other = make_setup();
  set_vocabulary(*other.pre, {"blue", "red", "green"});
  const auto rebuilt = batch_bytes(open(other, dir.file("t.csv"), false, cache), 2, 4);
  CHECK(rebuilt != plain);
  CHECK(rebuilt == batch_bytes(open(other, dir.file("t.csv")), 2, 4));
}
