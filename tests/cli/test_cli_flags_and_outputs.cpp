// graph-runner's flags (ranges, repeated names) and outputs on disk (destinations checked
// before any work, atomic files, run's outputs written as a set): issue 14's reproducers.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "engine/npy.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using fg::test::run_cli;
using fg::test::write_text;

namespace {

const char* kSmall =
    "name: small\ninputs:\n  x: {shape: [6]}\n  t: {shape: [null], dtype: int32}\nnodes:\n"
    "  - {name: e, op: embedding, input: t, input_dim: 20, output_dim: 3}\n"
    "  - {name: g, op: global_average_pooling1d, input: e}\n"
    "  - {name: f, op: concatenate, inputs: [x, g]}\n"
    "  - {name: p, op: dense, input: f, units: 4, activation: softmax}\n"
    "outputs: [p, g]\n";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// No temporary left beside the targets.
void check_no_temporaries(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    CAPTURE(e.path().string());
    CHECK_FALSE(has(e.path().filename().string(), ".tmp"));
  }
}

}  // namespace

TEST_CASE("run without --input: ids below the smallest input_dim of the embeddings reading them") {
  fg::test::NamedTempDir dir("fg_cliout", "vocab");
  const std::string g =
      write_text(dir.path + "/two.yaml",
                 "inputs:\n  ids: {shape: [null], dtype: int32}\nnodes:\n"
                 "  - {name: a, op: embedding, input: ids, input_dim: 100, output_dim: 4}\n"
                 "  - {name: b, op: embedding, input: ids, input_dim: 5000, output_dim: 4}\n"
                 "  - {name: s, op: add, inputs: [a, b]}\n"
                 "outputs: [s]\n");
  const auto r = run_cli("run " + g + " --batch 8 --output-dir " + dir.path + "/out");
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(fs::exists(dir.path + "/out/s.npy"));
}

TEST_CASE("numeric flags out of range are usage errors naming the flag and the range") {
  fg::test::NamedTempDir dir("fg_cliout", "ranges");
  const std::string g = write_text(dir.path + "/small.yaml", kSmall);
  const std::string out = " --output-dir " + dir.path + "/out";
  struct Case {
    std::string args, words;
  };
  for (const Case& c : std::vector<Case>{
           {"run " + g + " --threads 100000" + out, "--threads: expected an integer in 0..1024"},
           {"run " + g + " --threads -1" + out, "--threads: expected an integer in 0..1024"},
           {"bench " + g + " --threads 1025", "--threads: expected an integer in 0..1024"},
           {"run " + g + " --seed -1" + out,
            "--seed: expected an integer in 0..1844674407370955161"},
           {"run " + g + " --seed 18446744073709551616" + out, "got '18446744073709551616'"},
           {"init " + g + " -o " + dir.path + "/w.st --seed -1", "--seed: expected an integer"},
           {"run " + g + " --batch 9223372036854775808" + out,
            "--batch: expected an integer in 1..9223372036854775807"},
           {"summary " + g + " --batch 9223372036854775808", "--batch: expected an integer"},
           {"run " + g + " --batch 0" + out, "--batch: expected an integer in 1.."},
           {"bench " + g + " --peak-seconds nan", "--peak-seconds: expected a number in 0..60"},
           {"bench " + g + " --peak-seconds inf", "--peak-seconds: expected a number in 0..60"},
           {"bench " + g + " --batch 1,9223372036854775808", "--batch takes positive sizes"},
           {"run " + g + " --top 0" + out, "--top: expected an integer in 1.."},
           {"run " + g + " --dim t=9223372036854775808" + out, "--dim t: '9223372036854775808'"},
       }) {
    CAPTURE(c.args);
    const auto r = run_cli(c.args);
    CAPTURE(r.out);
    CHECK(r.code == 2);
    CHECK(has(r.out, c.words));
  }
  CHECK_FALSE(fs::exists(dir.path + "/out"));  // nothing was run
}

TEST_CASE("a repeated --dim or --input for the same name is a usage error") {
  fg::test::NamedTempDir dir("fg_cliout", "repeat");
  const std::string g = write_text(dir.path + "/small.yaml", kSmall);
  fg::write_npy(dir.path + "/x.npy", fg::Tensor(fg::DType::f32, {1, 6}));
  const std::string x = " --input x=" + dir.path + "/x.npy";
  for (const std::string& args :
       {"run " + g + " --dim t=5 --dim t=6 --output-dir " + dir.path + "/out",
        "bench " + g + " --dim t=5 --dim t=5", "summary " + g + " --dim t=5 --dim t=6",
        "run " + g + x + x + " --output-dir " + dir.path + "/out", "bench " + g + x + x}) {
    CAPTURE(args);
    const auto r = run_cli(args);
    CAPTURE(r.out);
    CHECK(r.code == 2);
    CHECK(has(r.out, "is given twice"));
    CHECK_FALSE(has(r.out, "weights:"));  // found before loading anything
  }
}

TEST_CASE("output destinations are checked before any work, with a clear message") {
  fg::test::NamedTempDir dir("fg_cliout", "dest");
  const std::string g = write_text(dir.path + "/small.yaml", kSmall);
  const std::string file = write_text(dir.path + "/a_file", "keep");
  fs::create_directories(dir.path + "/foreign");
  write_text(dir.path + "/foreign/notes.txt", "mine");
  struct Case {
    std::string args, words;
  };
  for (const Case& c : std::vector<Case>{
           {"run " + g + " --output-dir " + file,
            "--output-dir: '" + file + "' exists and is not a directory"},
           {"run " + g + " --output-dir /dev/null", "is not a directory"},
           {"run " + g + " --output-dir ''", "--output-dir: the directory name is empty"},
           {"run " + g + " --output-dir " + dir.path + "/no/such/out", "does not exist"},
           {"run " + g + " --output-dir " + dir.path + "/foreign", "graph-runner did not write"},
           {"run " + g + " --output-dir " + dir.path + "/foreign/..",
            "cannot be replaced as a whole"},
           {"run " + g + " --output-dir /", "cannot be replaced as a whole"},
           {"run " + g + " --output-dir " + dir.path + "/o --dump-intermediates " + file,
            "--dump-intermediates: '" + file + "' exists and is not a directory"},
           {"run " + g + " --output-dir " + dir.path + "/o --trace " + dir.path,
            "--trace: '" + dir.path + "' is a directory"},
           {"dot " + g + " -o " + dir.path, "-o/--output: '" + dir.path + "' is a directory"},
           {"dot " + g + " -o /dev/null", "is not a regular file"},
           {"init " + g + " -o " + dir.path + "/no/such/w.safetensors", "does not exist"},
           {"bench " + g + " --trace " + dir.path, "--trace: '" + dir.path + "' is a directory"},
       }) {
    CAPTURE(c.args);
    const auto r = run_cli(c.args);
    CAPTURE(r.out);
    CHECK(r.code == 1);
    CHECK(has(r.out, c.words));
    CHECK_FALSE(has(r.out, "weights:"));  // before loading the graph's weights
    CHECK_FALSE(has(r.out, "internal error"));
  }
  CHECK(read_text(file) == "keep");
  CHECK(read_text(dir.path + "/foreign/notes.txt") == "mine");
  check_no_temporaries(dir.path);
}

TEST_CASE("run writes its outputs as a set: a new directory with a manifest swapped into place") {
  fg::test::NamedTempDir dir("fg_cliout", "set");
  const std::string g = write_text(dir.path + "/small.yaml", kSmall);
  const std::string out = dir.path + "/out";
  auto first = run_cli("run " + g + " --output-dir " + out + " --dim t=3");
  REQUIRE(first.code == 0);
  const auto manifest = nlohmann::json::parse(read_text(out + "/manifest.json"));
  CHECK(manifest["graph"] == g);
  REQUIRE(manifest["outputs"].size() == 2);
  CHECK(manifest["outputs"][0]["name"] == "g");
  CHECK(manifest["outputs"][0]["file"] == "g.npy");
  CHECK(manifest["outputs"][0]["shape"] == nlohmann::json::array({1, 3}));
  CHECK(manifest["outputs"][1]["dtype"] == "float32");
  // a later run replaces the whole set (a file of the old set that is not in the new one goes)
  write_text(out + "/stale.npy", "old");
  auto second = run_cli("run " + g + " --output-dir " + out + " --dim t=3 --batch 2");
  REQUIRE(second.code == 0);
  CHECK_FALSE(fs::exists(out + "/stale.npy"));
  CHECK(fg::read_npy(out + "/p.npy", fg::DType::f32).shape() == fg::Dims{2, 4});
  // a failing run leaves the previous set as it was
  fg::Tensor bad_ids(fg::DType::i32, {2, 3});
  bad_ids.mutable_data<int32_t>()[0] = 20;  // input_dim 20: out of range
  fg::write_npy(dir.path + "/t.npy", bad_ids);
  const std::string before = read_text(out + "/p.npy");
  auto failed = run_cli("run " + g + " --output-dir " + out + " --input t=" + dir.path + "/t.npy");
  CHECK(failed.code == 1);
  CHECK(has(failed.out, "out of range for input_dim 20"));
  CHECK(read_text(out + "/p.npy") == before);
  CHECK(fs::exists(out + "/manifest.json"));
  check_no_temporaries(dir.path);
}

TEST_CASE("four concurrent dot -o of one file all succeed and leave no temporary") {
  fg::test::NamedTempDir dir("fg_cliout", "dot_race");
  const std::string g = write_text(dir.path + "/small.yaml", kSmall);
  const std::string target = dir.path + "/same.dot";
  for (int round = 0; round < 5; ++round) {
    std::string script;
    for (int i = 0; i < 4; ++i)
      script += fg::test::graph_runner_path() + " dot " + g + " -o " + target + " || echo FAIL & ";
    const auto r = run_cli("validate " + g + " >/dev/null; (" + script + " wait) 2>&1; echo done");
    CAPTURE(r.out);
    CHECK_FALSE(has(r.out, "FAIL"));
    CHECK(has(r.out, "done"));
  }
  CHECK(has(read_text(target), "digraph"));
  check_no_temporaries(dir.path);
}
