// What the command line needs from the public API, as any client would use it: input shapes
// with defaults, synthetic inputs within the ops' index ranges, probability outputs, plan
// figures, the session's weights and load times, the thread bound, compile_file.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <fusiongraph/fusiongraph.hpp>
#include <string>
#include <thread>

#include "tests/test_util.hpp"

namespace fs = std::filesystem;

namespace {

// One int input read by two embeddings of different vocabularies (issue 14's reproducer),
// a float input with a default size, and a softmax head.
const char* kTwoVocabularies = R"(name: two_vocabularies
inputs:
  ids: {shape: [null], dtype: int32, default_shape: [13]}
  x: {shape: [null, 3], default_shape: [7, 3]}
nodes:
  - {name: small, op: embedding, input: ids, input_dim: 100, output_dim: 4}
  - {name: large, op: embedding, input: ids, input_dim: 5000, output_dim: 4}
  - {name: both, op: add, inputs: [small, large]}
  - {name: pooled, op: global_average_pooling1d, input: both}
  - {name: xp, op: global_average_pooling1d, input: x}
  - {name: f, op: concatenate, inputs: [pooled, xp]}
  - {name: hidden, op: dense, input: f, units: 5, activation: relu}
  - {name: probs, op: dense, input: hidden, units: 4, activation: softmax}
  - {name: soft, op: softmax, input: hidden}
outputs: [probs, hidden, soft]
)";

fg::Session two_vocabularies(int threads = 1) {
  fg::CompileOptions options;
  options.init_seed = 3;
  options.threads = threads;
  return fg::load_string(kTwoVocabularies, options, "two.yaml");
}

using fg::test::error_of;

}  // namespace

TEST_CASE("api input_shapes fills null dims from the given sizes, default_shape, else 100") {
  const fg::Session s = two_vocabularies();
  auto shapes = s.input_shapes(2);
  CHECK(shapes.at("ids") == fg::Dims{2, 13});
  CHECK(shapes.at("x") == fg::Dims{2, 7, 3});
  shapes = s.input_shapes(5, {{"ids", {9}}});
  CHECK(shapes.at("ids") == fg::Dims{5, 9});
  CHECK(shapes.at("x") == fg::Dims{5, 7, 3});
  fg::CompileOptions none;
  const fg::Session plain = fg::load_string(
      "inputs:\n  a: {shape: [null]}\nnodes:\n  - {name: r, op: activation, "
      "input: a, activation: relu}\noutputs: [r]\n",
      none);
  CHECK(plain.input_shapes(1).at("a") == fg::Dims{1, 100});
  CHECK(error_of([&] {
          s.input_shapes(1, {{"idz", {3}}});
        }).find("did you mean 'ids'") != std::string::npos);
}

TEST_CASE("api synthetic ids stay below the smallest input_dim of the embeddings reading them") {
  const fg::Session s = two_vocabularies();
  const auto inputs = s.synthetic_inputs(s.input_shapes(64, {{"ids", {127}}}), 1);
  const fg::Tensor& ids = inputs.at("ids");
  REQUIRE(ids.dtype() == fg::DType::i32);
  REQUIRE(ids.size() == 64u * 127u);
  const int32_t* p = ids.data<int32_t>();
  CHECK(*std::min_element(p, p + ids.size()) >= 1);
  CHECK(*std::max_element(p, p + ids.size()) <= 99);  // input_dim 100, not 5000
  CHECK(*std::max_element(p, p + ids.size()) >= 50);  // and they do spread over the range
  const fg::Tensor& x = inputs.at("x");
  const float* q = x.data<float>();
  CHECK(*std::min_element(q, q + x.size()) >= 0.0f);
  CHECK(*std::max_element(q, q + x.size()) < 1.0f);
  // deterministic for a seed, different for another
  const auto again = s.synthetic_inputs(s.input_shapes(64, {{"ids", {127}}}), 1);
  CHECK(fg::to_floats(again.at("x")) == fg::to_floats(x));
  const auto other = s.synthetic_inputs(s.input_shapes(64, {{"ids", {127}}}), 2);
  CHECK(fg::to_floats(other.at("x")) != fg::to_floats(x));
  // and the graph runs on them (an id of 100 or more would fail in the small embedding)
  CHECK_NOTHROW(s.run(inputs));
  CHECK(error_of([&] {
          s.synthetic_inputs({{"nope", {1}}});
        }).find("has no input 'nope'") != std::string::npos);
}

TEST_CASE("api output_is_probabilities: softmax heads only") {
  const fg::Session s = two_vocabularies();
  CHECK(s.output_is_probabilities("probs"));
  CHECK(s.output_is_probabilities("soft"));
  CHECK_FALSE(s.output_is_probabilities("hidden"));
  CHECK_THROWS_AS(s.output_is_probabilities("prob"), fg::Error);
  const auto out = s.run(s.synthetic_inputs(s.input_shapes(3)));
  const std::vector<float> p = fg::to_floats(out.at("probs"));
  for (int b = 0; b < 3; ++b)
    CHECK(p[b * 4] + p[b * 4 + 1] + p[b * 4 + 2] + p[b * 4 + 3] == doctest::Approx(1.0));
}

TEST_CASE("api plan_figures gives the plan's FLOPs and arena") {
  const fg::Session s = two_vocabularies();
  const auto shapes = s.input_shapes(2);
  const fg::PlanFigures f = s.plan_figures(shapes);
  // matmuls only: hidden 2*(4+3)*5, probs 2*5*4 per sample
  CHECK(f.flops == doctest::Approx(2.0 * (2 * 7 * 5 + 2 * 5 * 4)));
  CHECK(f.arena_bytes > 0);
  CHECK(f.unplanned_arena_bytes >= f.arena_bytes);
  CHECK(error_of([&] {
          s.plan_figures({{"ids", {2, 13}}});
        }).find("input 'x' is missing") != std::string::npos);
}

TEST_CASE("api weights, weight_bytes and load_times") {
  const fg::Session s = two_vocabularies();
  // embeddings 100*4 + 5000*4, dense (7*5 + 5), (5*4 + 4)
  CHECK(s.weight_bytes() == 4u * (400 + 20000 + 40 + 24));
  CHECK(s.weights().tensors().size() == 6);
  CHECK(s.load_times().compile_ms >= 0);
  CHECK(s.load_times().weights_ms >= 0);
  CHECK(s.load_times().model_ms >= 0);
}

TEST_CASE("api CompileOptions::threads is 0 or 1..kMaxThreads") {
  CHECK(fg::kMaxThreads == 1024);
  for (int bad : {-1, 1025, 100000}) {
    CAPTURE(bad);
    const std::string e = error_of([&] { two_vocabularies(bad); });
    CHECK(e.find("CompileOptions::threads is " + std::to_string(bad)) != std::string::npos);
    CHECK(e.find("1..1024") != std::string::npos);
  }
  CHECK(two_vocabularies(0).threads() >= 1);        // all cores
  CHECK(two_vocabularies(1024).threads() == 1024);  // accepted (not run)
}

TEST_CASE("api compile_file compiles a graph that has weights without any") {
  const auto graph = fg::compile_file(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  CHECK(!graph->all_weights().empty());
  CHECK_THROWS_AS(fg::compile_file("/no/such/graph.yaml"), fg::Error);
}

TEST_CASE("api write_file_atomic: concurrent writers of one path never collide") {
  const fs::path dir = fs::temp_directory_path() / ("fg_atomic_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string target = (dir / "same.txt").string();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const std::string text(1000 + t, static_cast<char>('a' + t));
      for (int i = 0; i < 30; ++i) {
        try {
          fg::write_file_atomic(target, {text});
        } catch (const fg::Error&) {
          ++failures;
        }
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  std::ifstream in(target);
  const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(back.size() >= 1000);
  CHECK(back == std::string(back.size(), back[0]));  // one writer's whole text
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);
  fs::remove_all(dir);
}

TEST_CASE("api replace_directory: all new files or the old ones, nothing left on failure") {
  const fs::path dir = fs::temp_directory_path() / ("fg_replace_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "out").string();
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
  fg::replace_directory(out, "manifest", [&](const std::string& tmp) {
    write(fs::path(tmp) / "a", "1");
    write(fs::path(tmp) / "manifest", "m1");
  });
  CHECK(fs::exists(fs::path(out) / "a"));
  // a failure half-way leaves the old set and no temporary directory
  CHECK_THROWS_AS(fg::replace_directory(out, "manifest",
                                        [&](const std::string& tmp) {
                                          write(fs::path(tmp) / "b", "2");
                                          throw fg::Error("disk full (simulated)");
                                        }),
                  fg::Error);
  CHECK(fs::exists(fs::path(out) / "a"));
  CHECK_FALSE(fs::exists(fs::path(out) / "b"));
  // forgetting the marker is an error too
  CHECK_THROWS_AS(
      fg::replace_directory(out, "manifest",
                            [&](const std::string& tmp) { write(fs::path(tmp) / "c", "3"); }),
      fg::Error);
  // a successful replacement swaps the whole set
  fg::replace_directory(out, "manifest", [&](const std::string& tmp) {
    write(fs::path(tmp) / "b", "2");
    write(fs::path(tmp) / "manifest", "m2");
  });
  CHECK_FALSE(fs::exists(fs::path(out) / "a"));
  CHECK(fs::exists(fs::path(out) / "b"));
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += 1 + 0 * e.is_directory();
  CHECK(entries == 1);  // only out/
  // a directory the caller did not write is never replaced
  const std::string foreign = (dir / "foreign").string();
  fs::create_directories(foreign);
  write(fs::path(foreign) / "notes", "mine");
  CHECK_THROWS_AS(fg::replace_directory(foreign, "manifest", [](const std::string&) {}), fg::Error);
  CHECK(fs::exists(fs::path(foreign) / "notes"));
  fs::remove_all(dir);
}
