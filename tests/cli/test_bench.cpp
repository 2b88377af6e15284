// graph-runner bench, run/bench --per-node and --trace, and the cli/perf helpers.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/json_text.hpp"
#include "cli/perf/fma_peak.hpp"
#include "cli/perf/process_stats.hpp"
#include "cli/profile_report.hpp"
#include "engine/npy.hpp"
#include "framework/error.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

using Result = fg::test::CliResult;
using fg::test::run_cli;

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& name) {
    path = (std::filesystem::temp_directory_path() /
            ("fg_bench_" + name + "_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Two branches (x: dense, t: embedding + LSTM), a fusion and a softmax head.
// FLOPs per sample (2 x MACs): h 2*16*32 = 1024, LSTM 2*(8+4)*16*7 = 2688, p 2*36*4 = 288.
const char* kSmallGraph =
    "name: small\n"
    "inputs:\n"
    "  x: {shape: [16]}\n"
    "  t: {shape: [null], dtype: int32, default_shape: [7]}\n"
    "nodes:\n"
    "  - {name: h, op: dense, input: x, units: 32, activation: relu}\n"
    "  - {name: e, op: embedding, input: t, input_dim: 50, output_dim: 8}\n"
    "  - {name: l, op: lstm, input: e, units: 4}\n"
    "  - {name: f, op: concatenate, inputs: [h, l]}\n"
    "  - {name: p, op: dense, input: f, units: 4, activation: softmax}\n"
    "outputs: [p]\n";
const double kSmallFlopsPerSample = 1024 + 2688 + 288;
const std::vector<std::string> kSmallNodes = {"h", "e", "l", "f", "p"};

std::string write_small_graph(const TempDir& dir) {
  std::string path = dir.path + "/small.yaml";
  std::ofstream(path) << kSmallGraph;
  return path;
}

using Json = nlohmann::json;

const Json* member(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const Json& need(const Json& obj, const std::string& key) {
  const Json* v = member(obj, key);
  INFO("missing key: " << key);
  REQUIRE(v != nullptr);
  return *v;
}

double num(const Json& obj, const std::string& key) {
  const Json& v = need(obj, key);
  INFO("key " << key << " is " << v.type_name());
  REQUIRE(v.is_number());
  return v.get<double>();
}

std::string str(const Json& obj, const std::string& key) {
  const Json& v = need(obj, key);
  REQUIRE(v.is_string());
  return v.get<std::string>();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool python_available() {
  return std::system("command -v python3 >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("bench prints latency, throughput, peak, memory and cold start for each batch") {
  TempDir dir("text");
  std::string g = write_small_graph(dir);
  Result r = run_cli("bench " + g + " --batch 1,3 --iterations 3 --warmup 1 --peak-seconds 0.05");
  CAPTURE(r.out);
  REQUIRE(r.code == 0);
  for (const char* field : {"median ms", "p10 ms", "p90 ms", "samples/s", "GFLOP/s", "% peak",
                            "arena MB", "cold start:", "graph ", "weights ", "first run",
                            "peak: ", "FMA kernel", "peak resident", "(ru_maxrss)", "VmHWM"})
    CHECK_MESSAGE(r.out.find(field) != std::string::npos, field);
  // one row per batch size
  CHECK(r.out.find("\n     1  ") != std::string::npos);
  CHECK(r.out.find("\n     3  ") != std::string::npos);
}

TEST_CASE("bench --json follows the documented schema and its figures are consistent") {
  TempDir dir("json");
  std::string g = write_small_graph(dir);
  Result r = run_cli("bench " + g +
                         " --batch 1,5 --iterations 4 --warmup 0 --threads 1 --dim t=9 --json "
                         "--peak-seconds 0.05",
                     false);
  CAPTURE(r.out);
  REQUIRE(r.code == 0);
  Json root = Json::parse(r.out);  // stdout must be the JSON document alone
  REQUIRE(root.is_object());
  CHECK(str(root, "schema") == "fusiongraph-bench/1");
  CHECK(str(root, "graph_name") == "small");
  CHECK(str(root, "graph") == g);
  CHECK(num(root, "threads") == 1);
  CHECK(need(root, "optimize").get<bool>());
  CHECK(num(root, "warmup") == 0);
  CHECK(num(root, "iterations") == 4);
  need(root, "weights");
  // weights: 16*32+32 + 50*8 + (8*16 + 4*16 + 16) + 36*4+4
  CHECK(num(root, "weights_bytes") == 4 * (544 + 400 + 208 + 148));
  const auto& machine = need(root, "machine");
  CHECK(num(machine, "logical_cpus") >= 1);
  need(machine, "cpu_model");
  CHECK(str(root, "precision") == "f32");
  CHECK(!str(machine, "onednn_isa").empty());
  CHECK(!root.contains("precision_warning"));
  const auto& peak = need(root, "peak");
  CHECK(num(peak, "gflops") > 0);
  CHECK(num(peak, "threads") == 1);
  CHECK(!str(peak, "kernel").empty());
  const auto& cold = need(root, "cold_start");
  for (const char* k : {"load_graph_ms", "load_weights_ms", "model_ms", "first_run_ms"})
    CHECK(num(cold, k) >= 0);
  CHECK(num(cold, "first_batch") == 1);
  CHECK(num(cold, "total_ms") >= num(cold, "first_run_ms"));
  CHECK(num(cold, "since_process_start_ms") >= num(cold, "total_ms"));
  const auto& mem = need(root, "memory");
  CHECK(num(mem, "ru_maxrss_bytes") > 1e6);
  CHECK(num(mem, "vm_hwm_bytes") > 1e6);
  const auto& batches = need(root, "batches");
  REQUIRE(batches.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const auto& b = batches[i];
    const double batch = i == 0 ? 1 : 5;
    CAPTURE(batch);
    CHECK(num(b, "batch") == batch);
    const auto& inputs = need(b, "inputs");
    const auto& t = need(inputs, "t");
    REQUIRE(t.size() == 2);
    CHECK(t[0] == (i == 0 ? 1 : 5));
    CHECK(t[1] == 9);  // --dim t=9
    const auto& times = need(b, "times_ms");
    REQUIRE(times.size() == 4);
    std::vector<double> ts;
    for (const auto& v : times) ts.push_back(v.get<double>());
    std::sort(ts.begin(), ts.end());
    const double med = num(b, "median_ms");
    CHECK(med == doctest::Approx((ts[1] + ts[2]) / 2).epsilon(1e-9));
    CHECK(num(b, "min_ms") == doctest::Approx(ts.front()));
    CHECK(num(b, "max_ms") == doctest::Approx(ts.back()));
    CHECK(num(b, "p10_ms") <= med);
    CHECK(num(b, "p90_ms") >= med);
    CHECK(num(b, "mean_ms") > 0);
    CHECK(num(b, "first_run_ms") > 0);
    // FLOPs of the plan: the LSTM runs 9 steps here
    const double flops = batch * (1024 + 2 * (8 + 4) * 16 * 9 + 288);
    CHECK(num(b, "flops") == doctest::Approx(flops));
    CHECK(num(b, "samples_per_s") == doctest::Approx(batch / (med * 1e-3)).epsilon(1e-6));
    CHECK(num(b, "gflops") == doctest::Approx(flops / (med * 1e-3) / 1e9).epsilon(1e-6));
    CHECK(num(b, "peak_fraction") ==
          doctest::Approx(num(b, "gflops") / num(peak, "gflops")).epsilon(1e-6));
    CHECK(num(b, "arena_bytes") > 0);
    CHECK(num(b, "scratchpad_bytes") >= 0);
    const double foreign = num(b, "foreign_cpu");
    CHECK(foreign >= 0);
    CHECK(foreign <= 1);
    CHECK(member(b, "per_node") == nullptr);  // only with --per-node
  }
}

TEST_CASE("bench with --input uses the first samples of the file and checks their count") {
  TempDir dir("input");
  std::string g = write_small_graph(dir);
  fg::Tensor x(fg::DType::f32, {4, 16});
  for (size_t i = 0; i < x.size(); ++i) x.mutable_data<float>()[i] = 0.01f * i;
  fg::write_npy(dir.path + "/x.npy", x);
  Result ok = run_cli("bench " + g + " --batch 2,4 --iterations 1 --warmup 0 --peak-seconds 0.02 " +
                          "--json --input x=" + dir.path + "/x.npy",
                      false);
  REQUIRE(ok.code == 0);
  Json root = Json::parse(ok.out);
  CHECK(need(need(need(root, "batches")[0], "inputs"), "x")[0] == 2);
  Result few = run_cli("bench " + g + " --batch 8 --iterations 1 --input x=" + dir.path + "/x.npy");
  CHECK(few.code == 1);
  CHECK(few.out.find("has 4 samples but the largest --batch is 8") != std::string::npos);
}

TEST_CASE("the FMA peak is positive for every kernel this CPU runs") {
  for (auto k : {fg::perf::FmaKernel::best, fg::perf::FmaKernel::avx512, fg::perf::FmaKernel::avx2,
                 fg::perf::FmaKernel::portable}) {
    if (!fg::perf::fma_kernel_available(k)) {
      CHECK_THROWS_AS(fg::perf::measure_fma_peak(1, 0.01, k), fg::Error);
      continue;
    }
    auto p = fg::perf::measure_fma_peak(1, 0.02, k);
    CAPTURE(p.kernel);
    CHECK(p.gflops > 0.1);
    CHECK(std::isfinite(p.gflops));
    CHECK(p.repetitions >= 3);
    CHECK(p.threads == 1);
  }
  CHECK(fg::perf::fma_kernel_available(fg::perf::FmaKernel::portable));
  auto two = fg::perf::measure_fma_peak(2, 0.02);
  CHECK(two.gflops > 0);
  CHECK(two.threads == 2);
  CHECK_THROWS_AS(fg::perf::measure_fma_peak(0), fg::Error);
}

TEST_CASE("percentile interpolates linearly like numpy") {
  std::vector<double> v = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
  CHECK(fg::perf::percentile(v, 10) == doctest::Approx(1.9));
  CHECK(fg::perf::percentile(v, 90) == doctest::Approx(9.1));
  CHECK(fg::perf::median(v) == doctest::Approx(5.5));
  CHECK(fg::perf::percentile(v, 0) == 1);
  CHECK(fg::perf::percentile(v, 100) == 10);
  CHECK(fg::perf::median({3.0}) == 3);
  CHECK(std::isnan(fg::perf::median({})));
}

TEST_CASE("process stats read peak memory from getrusage and /proc") {
  std::vector<char> big(32 << 20, 1);  // touch 32 MB
  CHECK(big[12345] == 1);
  CHECK(fg::perf::max_rss_bytes() > (32 << 20));
  CHECK(fg::perf::proc_status_bytes("VmHWM") > (32 << 20));
  CHECK(fg::perf::proc_status_bytes("NoSuchField") == 0);
  fg::perf::CpuContention c;
  c.start();
  double f = c.foreign();
  CHECK(f >= 0);
  CHECK(f <= 1);
}

TEST_CASE(
    "json_text writes null for non-finite numbers and never fails on bytes that are not UTF-8") {
  nlohmann::ordered_json j = {{"s", "a\"b\\c\n\t\x01"}, {"inf", 1.0 / 0.0}, {"bad", "x\xff"}};
  const std::string text = fg::cli::json_text(j);
  CHECK(text.back() == '\n');
  const Json back = Json::parse(text);
  CHECK(str(back, "s") == "a\"b\\c\n\t\x01");
  CHECK(need(back, "inf").is_null());
  CHECK(str(back, "bad") == "x\xef\xbf\xbd");        // U+FFFD
  CHECK(text.find("\"s\"") < text.find("\"inf\""));  // members in the order written
}

TEST_CASE("run --per-node lists every node with time, share, GFLOP/s and branch") {
  TempDir dir("pernode");
  std::string g = write_small_graph(dir);
  Result r = run_cli("run " + g + " --per-node --output-dir " + dir.path + "/out");
  CAPTURE(r.out);
  REQUIRE(r.code == 0);
  auto table = r.out.substr(r.out.find("per node"));
  for (const auto& n : kSmallNodes) {
    CAPTURE(n);
    CHECK(table.find("\n  " + n + " ") != std::string::npos);
  }
  for (const char* col :
       {"median ms", "share", "GFLOP/s", "oneDNN impl", "per branch", "(fusion/head)"})
    CHECK(table.find(col) != std::string::npos);
  // per-branch rows: both inputs
  auto branches = table.substr(table.find("per branch"));
  CHECK(branches.find("\n  x ") != std::string::npos);
  CHECK(branches.find("\n  t ") != std::string::npos);
}

TEST_CASE("bench --per-node gives every node once, shares summing to 1, sorted by time") {
  TempDir dir("pernode_json");
  std::string g = write_small_graph(dir);
  Result r = run_cli(
      "bench " + g + " --batch 2 --iterations 3 --warmup 0 --per-node --json --peak-seconds 0.02",
      false);
  REQUIRE(r.code == 0);
  Json root = Json::parse(r.out);
  const auto& b = need(root, "batches").at(0);
  const auto& nodes = need(b, "per_node");
  std::multiset<std::string> seen;
  double share = 0, prev = 1e300, lstm_flops = -1;
  for (const auto& n : nodes) {
    std::string name = str(n, "node");
    if (name.find('/') == std::string::npos) seen.insert(name);  // inserted reorders aside
    share += num(n, "share");
    CHECK(num(n, "median_ms") <= prev);
    prev = num(n, "median_ms");
    need(n, "impl");
    need(n, "op");
    if (name == "l") {
      CHECK(str(n, "branch") == "t");
      lstm_flops = num(n, "flops");
    }
    if (name == "p") CHECK(str(n, "branch").empty());
  }
  CHECK(seen == std::multiset<std::string>(kSmallNodes.begin(), kSmallNodes.end()));
  CHECK(share == doctest::Approx(1.0));
  CHECK(lstm_flops == doctest::Approx(2 * 2688));
  const auto& branches = need(b, "per_branch");
  std::set<std::string> names;
  for (const auto& br : branches) {
    names.insert(str(br, "branch"));
    CHECK(need(br, "times_ms").size() == 3);
  }
  CHECK(names == std::set<std::string>{"", "t", "x"});
  CHECK(num(b, "profiled_runs") == 3);
}

TEST_CASE("--trace writes Chrome trace JSON with one complete event per step") {
  TempDir dir("trace");
  std::string g = write_small_graph(dir);
  const std::string trace = dir.path + "/trace.json";
  Result r = run_cli("run " + g + " --trace " + trace + " --output-dir " + dir.path + "/out");
  CAPTURE(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(std::filesystem::exists(trace));
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  Json root = Json::parse(read_file(trace));
  const auto& events = need(root, "traceEvents");
  std::multiset<std::string> names;
  int x_events = 0;
  double last_end = 0;
  for (const auto& e : events) {
    if (str(e, "ph") != "X") continue;
    ++x_events;
    names.insert(str(e, "name"));
    CHECK(!str(e, "cat").empty());
    const double ts = num(e, "ts"), dur = num(e, "dur");
    CHECK(ts >= 0);
    CHECK(dur >= 0);
    CHECK(ts + 1e-3 >= last_end);  // steps run one after the other
    last_end = ts + dur;
    const auto& args = need(e, "args");
    need(args, "impl");
    need(args, "branch");
    CHECK(num(args, "flops") >= 0);
    num(e, "pid");
    num(e, "tid");
  }
  std::multiset<std::string> nodes;
  for (const auto& n : names)
    if (n.find('/') == std::string::npos) nodes.insert(n);
  CHECK(nodes == std::multiset<std::string>(kSmallNodes.begin(), kSmallNodes.end()));
  // every step of the profile, once: compare with bench --per-node's step count
  Result b = run_cli("bench " + g + " --batch 1 --iterations 1 --warmup 0 --per-node --json " +
                         "--peak-seconds 0.02 --trace " + dir.path + "/bench_trace.json",
                     false);
  REQUIRE(b.code == 0);
  size_t steps = need(need(Json::parse(b.out), "batches").at(0), "per_node").size();
  CHECK(x_events == static_cast<int>(steps));
  if (python_available()) {
    for (const auto& f : {trace, dir.path + "/bench_trace.json"}) {
      std::string cmd =
          "python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
          "sys.exit(0 if isinstance(d['traceEvents'], list) else 1)\" " +
          f;
      CHECK(std::system(cmd.c_str()) == 0);
    }
  }
}

TEST_CASE("write_chrome_trace fails cleanly on a missing folder") {
  TempDir dir("trace_fail");
  std::vector<fg::cli::TraceRun> runs(1);
  runs[0].label = "batch 1";
  fg::StepTiming s;
  s.name = "n";
  s.op = "dense";
  runs[0].steps.push_back(s);
  CHECK_THROWS_AS(fg::cli::write_chrome_trace(dir.path + "/no/such/dir/t.json", runs), fg::Error);
  fg::cli::write_chrome_trace(dir.path + "/t.json", runs);
  CHECK(std::filesystem::exists(dir.path + "/t.json"));
}

TEST_CASE(
    "--precision bf16: recorded by bench --json, shown per node, or a warning naming the ISA") {
  TempDir dir("bf16");
  std::string g = write_small_graph(dir);
  Result bench = run_cli("bench " + g +
                             " --batch 1 --iterations 1 --warmup 0 --threads 1 --json "
                             "--peak-seconds 0.01 --precision bf16",
                         false);
  REQUIRE(bench.code == 0);
  Json root = Json::parse(bench.out);
  CHECK(str(root, "precision") == "bf16");
  const std::string isa = str(need(root, "machine"), "onednn_isa");
  const bool native = isa.find("bf16") != std::string::npos || isa.find("amx") != std::string::npos;
  CHECK(root.contains("precision_warning") == !native);
  Result run = run_cli("run " + g + " --precision bf16 --per-node --output-dir " + dir.path + "/o");
  CAPTURE(run.out);
  REQUIRE(run.code == 0);
  // The two dense nodes decide; the LSTM, embedding and concatenate say nothing.
  const std::string table = run.out.substr(run.out.find("per node"));
  const std::string got = native ? "[bf16]" : "[f32: no native bf16 on " + isa + "]";
  size_t count = 0;
  for (size_t at = table.find(got); at != std::string::npos; at = table.find(got, at + 1)) ++count;
  CHECK(count == 2);
  CHECK((run.out.find("warning: precision bf16: oneDNN found " + isa) != std::string::npos) ==
        !native);
  Result bad = run_cli("run " + g + " --precision fp16");
  CHECK(bad.code == 2);
  CHECK(bad.out.find("'fp16'") != std::string::npos);
  CHECK(bad.out.find("f32, bf16") != std::string::npos);
}

TEST_CASE("bench rejects bad flags with exit code 2") {
  TempDir dir("badflags");
  std::string g = write_small_graph(dir);
  for (const char* bad :
       {" --batch 0", " --batch 1,,2", " --batch abc", " --batch 2,-1", " --iterations 0",
        " --warmup -1", " --threads -1", " --frobnicate", " --dim t", " --dim t=x",
        " --input y=foo.npy", " --input x", " --peak-seconds -1", " --precision int4"}) {
    CAPTURE(bad);
    Result r = run_cli("bench " + g + bad);
    CHECK(r.code == 2);
  }
  CHECK(run_cli("bench").code == 2);
  CHECK(run_cli("bench /no/such/graph.yaml").code == 2);
  CHECK(run_cli("run " + g + " --trace").code == 2);
  Result help = run_cli("bench --help");
  CHECK(help.code == 0);
  CHECK(help.out.find("Example") != std::string::npos);
  CHECK(help.out.find("--per-node") != std::string::npos);
}
