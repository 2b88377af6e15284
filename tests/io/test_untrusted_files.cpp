// Untrusted paths and files (issue 14): only regular files are read, never opened blocking (a
// FIFO is an error, not a hang); graph files are bounded; and a loaded session never reads its
// weights file again, so rewriting or truncating it under a live session changes nothing.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fusiongraph/fusiongraph.hpp>

#include "engine/npy.hpp"
#include "engine/weights.hpp"
#include "framework/yaml_loader.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

const char* kDenseGraph =
    "name: t\ninputs:\n  x: {shape: [5]}\nnodes:\n"
    "  - {name: d, op: dense, input: x, units: 7}\n"
    "  - {name: s, op: softmax, input: d}\noutputs: [s]\n";

std::string make_fifo(const fg::test::TempDir& dir) {
  const std::string path = dir.file("pipe");
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  return path;
}

// A dense whose kernel (4100 x 1024 floats, 16.8 MB) is large enough that the plan uses the
// loaded bytes in place, with no reordered copy (docs/ops/dense_shape_activation.md): every run
// reads the weights as loaded.
const char* kLargeDenseGraph =
    "name: t\ninputs:\n  x: {shape: [4100]}\nnodes:\n"
    "  - {name: d, op: dense, input: x, units: 1024}\n"
    "  - {name: s, op: softmax, input: d}\noutputs: [s]\n";

std::vector<float> run_once(const fg::Session& session, int batch) {
  std::vector<float> x(static_cast<size_t>(batch) * 4100);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  auto out = session.run({{"x", fg::tensor_f32({batch, 4100}, x)}});
  return fg::to_floats(out.at("s"));
}

}  // namespace

TEST_CASE("a FIFO given as a graph, weights or .npy file is an error, not a hang") {
  fg::test::TempDir dir;
  const std::string fifo = make_fifo(dir);
  fg::test::check_error([&] { fg::load_graph_file(fifo); }, {"pipe", "FIFO", "regular file"});
  fg::test::check_error([&] { fg::WeightStore::load_safetensors(fifo); }, {"pipe", "FIFO"});
  fg::test::check_error([&] { fg::read_npy(fifo, fg::DType::f32, "x"); },
                        {"pipe", "input 'x'", "FIFO"});
  fg::CompileOptions o;
  o.weights_file = fifo;
  fg::test::check_error([&] { fg::load_string(kDenseGraph, o); }, {"pipe", "FIFO"});
}

TEST_CASE("a directory given as a file is an error naming it") {
  fg::test::TempDir dir;
  fg::test::check_error([&] { fg::load_graph_file(dir.path().string()); }, {"a directory"});
  fg::test::check_error([&] { fg::read_npy(dir.path().string(), fg::DType::f32); },
                        {"a directory"});
}

TEST_CASE("a missing graph file still says so") {
  fg::test::check_error([&] { fg::load_graph_file("/nonexistent/graph.yaml"); },
                        {"cannot open the graph file", "No such file", "check the path"});
}

TEST_CASE("graph files are bounded in bytes and in nodes") {
  fg::test::TempDir dir;
  const std::string big = dir.file("big.yaml");
  fg::test::write_bytes(big,
                        std::string(kDenseGraph) + std::string(fg::kMaxGraphFileBytes, '#') + "\n");
  fg::test::check_error([&] { fg::load_graph_file(big); }, {"big.yaml", "16777216 bytes"});
  std::string many = "inputs: {x: {shape: [4]}}\nnodes:\n";
  for (size_t i = 0; i <= fg::kMaxGraphNodes; ++i)
    many += "  - {name: n" + std::to_string(i) + ", op: activation, input: x, activation: relu}\n";
  many += "outputs: [n0]\n";
  fg::test::check_error([&] { fg::load_graph_string(many, "many.yaml"); },
                        {"many.yaml:3:3", "100001 nodes", "limit of 100000"});
}

TEST_CASE("a live session does not depend on its weights file staying unchanged") {
  fg::test::TempDir dir;
  const std::string path = dir.file("w.safetensors");
  auto graph = fg::compile_graph(fg::load_graph_string(kLargeDenseGraph), fg::builtin_ops());
  fg::WeightStore::initialize(graph, 1).save_safetensors(path);
  fg::WeightStore::initialize(graph, 2).save_safetensors(dir.file("other.safetensors"));
  const std::string other = fg::test::read_bytes(dir.file("other.safetensors"));
  REQUIRE(other.size() == fg::test::read_bytes(path).size());

  fg::CompileOptions o;
  o.weights_file = path;
  fg::Session session = fg::load_string(kLargeDenseGraph, o);
  // The same weights from memory: what every run must keep giving, bit for bit.
  fg::CompileOptions in_memory;
  in_memory.weights = fg::WeightStore::initialize(graph, 1);
  const fg::Session reference = fg::load_string(kLargeDenseGraph, in_memory);
  const std::vector<float> before1 = run_once(session, 1);
  REQUIRE(before1 == run_once(reference, 1));

  SUBCASE("overwritten in place (as cp or rsync --inplace do)") {
    {
      std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
      out.write(other.data(), static_cast<std::streamsize>(other.size()));
      REQUIRE(out.good());
    }
    CHECK(run_once(session, 1) == before1);                 // a planned shape
    CHECK(run_once(session, 2) == run_once(reference, 2));  // a new plan
  }
  SUBCASE("truncated to nothing") {
    REQUIRE(::truncate(path.c_str(), 0) == 0);
    CHECK(run_once(session, 1) == before1);
    CHECK(run_once(session, 2) == run_once(reference, 2));  // a new plan: used to be SIGBUS
  }
  SUBCASE("deleted") {
    REQUIRE(::unlink(path.c_str()) == 0);
    CHECK(run_once(session, 1) == before1);
    CHECK(run_once(session, 3) == run_once(reference, 3));
  }
}
