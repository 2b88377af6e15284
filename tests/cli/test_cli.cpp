// graph-runner as a user runs it: exit codes, messages, files written.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/npy.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

using Result = fg::test::CliResult;

Result run(const std::string& args) {
  return fg::test::run_cli(args);
}

std::string graph(const std::string& name) {
  return fg::test::source_path("graphs/" + name);
}

std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("fg_cli_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST_CASE("validate: ok for the reference graph, exit 1 with the message for the seed as written") {
  Result ok = run("validate " + graph("multimodal_fusion.yaml"));
  CHECK(ok.code == 0);
  CHECK(ok.out.find("multimodal_fusion.yaml: ok") != std::string::npos);
  Result bad = run("validate " + graph("seed_as_written.yaml"));
  CHECK(bad.code == 1);
  CHECK(bad.out.find("seed_as_written.yaml:34:") != std::string::npos);
  CHECK(bad.out.find("node 'fusion' (concatenate)") != std::string::npos);
  CHECK(bad.out.find("hint:") != std::string::npos);
}

TEST_CASE("bad usage exits 2") {
  CHECK(run("").code == 2);
  CHECK(run("frobnicate").code == 2);
  CHECK(run("summary").code == 2);
  CHECK(run("summary " + graph("multimodal_fusion.yaml") + " --dim text").code == 2);
  CHECK(run("summary " + graph("multimodal_fusion.yaml") + " --dim text=abc").code == 2);
  CHECK(run("summary " + graph("multimodal_fusion.yaml") + " --batch 0").code == 2);
}

TEST_CASE("--help works on every command and shows examples") {
  for (const char* c : {"validate", "summary", "dot", "init", "run"}) {
    CAPTURE(c);
    Result r = run(std::string(c) + " --help");
    CHECK(r.code == 0);
    CHECK(r.out.find("Example") != std::string::npos);
  }
  Result top = run("--help");
  CHECK(top.code == 0);
  CHECK(top.out.find("graph-runner run graphs/multimodal_fusion.yaml") != std::string::npos);
}

TEST_CASE("summary prints the Keras-style table and JSON") {
  Result r =
      run("summary " + graph("multimodal_fusion.yaml") + " --dim text=100 --dim audio=16000");
  CHECK(r.code == 0);
  CHECK(r.out.find("Total params: 44,944,586") != std::string::npos);
  CHECK(r.out.find("FLOPs per sample: 4,006,960,512") != std::string::npos);
  Result j = run("summary " + graph("multimodal_fusion.yaml") +
                 " --dim text=100 --dim audio=16000 --json");
  CHECK(j.code == 0);
  CHECK(j.out.find("\"total_params\": 44944586") != std::string::npos);
  Result unknown = run("summary " + graph("multimodal_fusion.yaml") + " --dim txt=100");
  CHECK(unknown.code == 1);
  CHECK(unknown.out.find("did you mean 'text'?") != std::string::npos);
}

TEST_CASE("dot output is accepted by Graphviz when it is installed") {
  std::string dir = temp_dir("dot");
  Result r = run("dot " + graph("multimodal_fusion.yaml") + " -o " + dir + "/g.dot");
  CHECK(r.code == 0);
  CHECK(std::filesystem::file_size(dir + "/g.dot") > 100);
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    std::string cmd = "dot -Tsvg " + dir + "/g.dot -o " + dir + "/g.svg";
    CHECK(std::system(cmd.c_str()) == 0);
    CHECK(std::filesystem::file_size(dir + "/g.svg") > 1000);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("run --no-optimize dumps a conv's output that batch-norm folding hides") {
  std::string dir = temp_dir("fold");
  const std::string yaml = dir + "/bn.yaml";
  {
    std::ofstream f(yaml);
    f << "name: bn\ninputs:\n  x: {shape: [9, 4]}\nnodes:\n"
         "  - {name: c, op: conv1d, input: x, filters: 3, kernel_size: 2}\n"
         "  - {name: bn, op: batch_normalization, input: c}\n"
         "  - {name: g, op: global_average_pooling1d, input: bn}\n"
         "outputs: [g]\n";
  }
  Result fused =
      run("run " + yaml + " --output-dir " + dir + "/o1 --dump-intermediates " + dir + "/d1");
  Result plain = run("run " + yaml + " --no-optimize --output-dir " + dir +
                     "/o2 --dump-intermediates " + dir + "/d2");
  CAPTURE(fused.out);
  CAPTURE(plain.out);
  CHECK(fused.code == 0);
  CHECK(plain.code == 0);
  CHECK_FALSE(std::filesystem::exists(dir + "/d1/c.npy"));  // folded: holds bn's values
  CHECK(std::filesystem::exists(dir + "/d1/bn.npy"));
  CHECK(std::filesystem::exists(dir + "/d2/c.npy"));
  fg::Tensor a = fg::read_npy(dir + "/o1/g.npy", fg::DType::f32);
  fg::Tensor b = fg::read_npy(dir + "/o2/g.npy", fg::DType::f32);
  fg::test::check_close(a, fg::test::to_doubles(b), 1e-5, 1e-6);
  Result bench = run("bench " + yaml + " --batch 1 --iterations 2 --warmup 0 --no-optimize");
  CHECK(bench.code == 0);
  CHECK(bench.out.find("unfused plan") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("init then run a small graph writes the outputs and prints the top classes") {
  std::string dir = temp_dir("run");
  const std::string yaml = dir + "/small.yaml";
  {
    std::ofstream f(yaml);
    f << "name: small\ninputs:\n  x: {shape: [6]}\nnodes:\n"
         "  - {name: h, op: dense, input: x, units: 5, activation: relu}\n"
         "  - {name: p, op: dense, input: h, units: 4, activation: softmax}\n"
         "outputs: [p]\n";
  }
  Result init = run("init " + yaml + " -o " + dir + "/w.safetensors --seed 3");
  CHECK(init.code == 0);
  CHECK(init.out.find("4 tensors") != std::string::npos);
  Result r = run("run " + yaml + " --weights " + dir + "/w.safetensors --batch 2 --output-dir " +
                 dir + "/out --dump-intermediates " + dir + "/dump");
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("sample 1: class") != std::string::npos);
  fg::Tensor p = fg::read_npy(dir + "/out/p.npy", fg::DType::f32);
  CHECK(p.shape() == fg::Dims{2, 4});
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += p.data<float>()[i];
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(std::filesystem::exists(dir + "/dump/h.npy"));
  CHECK(std::filesystem::exists(dir + "/dump/p.npy"));
  // unknown input name -> usage error with a suggestion
  Result bad = run("run " + yaml + " --input y=foo.npy");
  CHECK(bad.code == 2);
  CHECK(bad.out.find("did you mean 'x'?") != std::string::npos);
  std::filesystem::remove_all(dir);
}
