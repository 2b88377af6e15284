// graph-runner bench-data: the raw-data pipeline alone (decode + preprocess, no model), in
// samples/s per worker count, medians of repeats; text or JSON (schema "fusiongraph-bench-data/1",
// docs/performance.md "Pipeline speed").
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fusiongraph/data.hpp>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "cli/json_text.hpp"
#include "cli/synthetic_media.hpp"

namespace fg::cli {

namespace {

constexpr const char* kSchema = "fusiongraph-bench-data/1";

struct BenchDataOptions {
  std::string graph, data, weights;
  int64_t synthetic = 0;
  std::string synthetic_dir;
  std::string workers = "1,2";
  int64_t samples = 256, batch = 32;
  int repeats = 3;
  bool json = false;
};

struct WorkerResult {
  int64_t workers = 0;
  std::vector<double> seconds;  // per repeat, sorted
  double median() const { return seconds[seconds.size() / 2]; }
};

// One pass over rows [0, samples) in batches of `batch`, as a prefetching pipeline reads a
// table: `workers` threads, each preparing whole batches (batch k on worker k % workers).
double time_pass(const RawInputs& raw, const Table& table, int64_t samples, int64_t batch,
                 int workers) {
  const int64_t batches = (samples + batch - 1) / batch;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  auto work = [&](int w) {
    try {
      for (int64_t k = w; k < batches; k += workers)
        raw.batch(table, k * batch, std::min(samples, (k + 1) * batch), 1);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return seconds;
}

// The synthetic set's folder: --synthetic-dir (kept), else a temporary one (removed).
struct SyntheticFolder {
  std::string path;
  bool remove = false;
  explicit SyntheticFolder(const std::string& dir) : path(dir), remove(dir.empty()) {
    if (remove)
      path = (std::filesystem::temp_directory_path() /
              fmt::format("fg_bench_data_{}", static_cast<long>(::getpid())))
                 .string();
  }
  ~SyntheticFolder() {
    std::error_code ec;
    if (remove) std::filesystem::remove_all(path, ec);
  }
};

void print_text(const BenchDataOptions& o, const std::string& graph, const std::string& data,
                int64_t samples, const std::vector<WorkerResult>& results) {
  std::cout << fmt::format(
      "bench-data {} on {}: {} samples in batches of {}, median of {} "
      "repeats\n",
      graph, data, samples, o.batch, o.repeats);
  std::cout << fmt::format("{:>8}  {:>12}  {:>10}  {:>8}\n", "workers", "samples/s", "ms/sample",
                           "speed-up");
  const double base = results.front().median();
  for (const auto& r : results)
    std::cout << fmt::format("{:>8}  {:>12.1f}  {:>10.3f}  {:>7.2f}x\n", r.workers,
                             samples / r.median(), 1e3 * r.median() / samples, base / r.median());
}

void print_json(const BenchDataOptions& o, const std::string& graph, const std::string& data,
                int64_t samples, const RawInputs& raw, const std::vector<WorkerResult>& results) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& r : results)
    list.push_back({{"workers", r.workers},
                    {"samples_per_second", samples / r.median()},
                    {"median_seconds", r.median()},
                    {"seconds", r.seconds}});
  const nlohmann::ordered_json out = {{"schema", kSchema},    {"graph", graph},
                                      {"data", data},         {"inputs", raw.raw_input_names()},
                                      {"samples", samples},   {"batch", o.batch},
                                      {"repeats", o.repeats}, {"results", list}};
  std::cout << json_text(out);
}

void check_sources(const BenchDataOptions& o) {
  if (o.synthetic > 0 && (!o.graph.empty() || !o.data.empty()))
    throw UsageError("--synthetic N writes its own graph and table: give no GRAPH or --data");
  if (o.synthetic == 0 && (o.graph.empty() || o.data.empty()))
    throw UsageError("bench-data needs GRAPH and --data TABLE, or --synthetic N");
  if (!o.synthetic_dir.empty() && o.synthetic == 0)
    throw UsageError("--synthetic-dir goes with --synthetic N");
}

int cmd_bench_data(const BenchDataOptions& o) {
  check_sources(o);
  const std::vector<int64_t> workers = parse_sizes("--workers", o.workers);
  for (int64_t w : workers)
    if (w > 1024) throw UsageError(fmt::format("--workers {}: at most 1024 workers", w));
  SyntheticFolder folder(o.synthetic_dir);
  std::string graph_path = o.graph, data = o.data;
  if (o.synthetic > 0) {
    const SyntheticMedia media = write_synthetic_media(folder.path, o.synthetic, 1);
    graph_path = media.graph;
    data = media.table;
    if (!o.json)
      std::cerr << fmt::format("wrote {} JPEGs, WAVs and texts to {}\n", o.synthetic, folder.path);
  }
  const auto graph = compile_file(graph_path);
  RawInputs raw(*graph, o.weights);
  const Table table = Table::read(data);
  raw.adapt(table);  // a vocabulary the weights did not give: from the table, as training does
  if (raw.raw_input_names().empty())
    throw Error("the graph declares no `preprocessing:` on its inputs: nothing to measure")
        .in_file(graph_path);
  const int64_t samples = std::min(o.samples, table.rows());
  if (samples < 1) throw Error("the table has no rows").in_file(data);
  time_pass(raw, table, std::min(samples, o.batch), o.batch, 1);  // warm the file cache
  std::vector<WorkerResult> results;
  for (int64_t w : workers) {
    WorkerResult r;
    r.workers = w;
    for (int i = 0; i < o.repeats; ++i)
      r.seconds.push_back(time_pass(raw, table, samples, o.batch, static_cast<int>(w)));
    std::sort(r.seconds.begin(), r.seconds.end());
    results.push_back(r);
  }
  if (o.json)
    print_json(o, graph_path, data, samples, raw, results);
  else
    print_text(o, graph_path, data, samples, results);
  return 0;
}

constexpr const char* kFooter =
    "Examples:\n"
    "  graph-runner bench-data examples/fashion_fusion/graph.yaml --data data/test.csv "
    "--workers 1,2\n"
    "  graph-runner bench-data --synthetic 64 --workers 1,2 --json\n"
    "Times decoding and preprocessing only (no model): passes over the first --samples rows "
    "in\n"
    "batches of --batch, whole batches spread over --workers threads; the median of --repeats "
    "passes.\n"
    "--synthetic N writes N 224x224 RGB JPEGs, 1 s 16 kHz WAVs and short texts (the reference "
    "graph's\n"
    "shapes) with a table and a graph into a temporary folder (kept with --synthetic-dir DIR).";

}  // namespace

Command add_bench_data_command(CLI::App& app) {
  auto o = std::make_shared<BenchDataOptions>();
  auto* c = app.add_subcommand("bench-data",
                               "Measure the raw-data pipeline alone: decode + preprocess "
                               "samples/s per worker count")
                ->footer(kFooter);
  c->add_option("graph", o->graph, "Graph YAML file with `preprocessing:`")
      ->check(CLI::ExistingFile);
  c->add_option("--data", o->data, "Table (.csv, .tsv, .jsonl): a column per raw input")
      ->check(CLI::ExistingFile);
  c->add_option("--weights", o->weights,
                "Trained weights holding learnt vocabularies (else learnt from the table)")
      ->check(CLI::ExistingFile);
  c->add_option("--workers", o->workers, "Worker counts to measure (default 1,2)");
  c->add_option("--samples", o->samples, "Rows per pass (default 256, at most the table's)")
      ->check(integer_in(1, INT64_MAX));
  c->add_option("--batch", o->batch, "Rows per batch (default 32)")->check(integer_in(1, 1000000));
  c->add_option("--repeats", o->repeats,
                "Passes per worker count; the median is reported "
                "(default 3)")
      ->check(integer_in(1, 1000));
  c->add_option("--synthetic", o->synthetic,
                "Write and measure N JPEG + WAV + text samples of the reference graph's shapes")
      ->check(integer_in(1, 100000));
  c->add_option("--synthetic-dir", o->synthetic_dir,
                "Where --synthetic writes (kept; default a temporary folder, removed)");
  c->add_flag("--json", o->json, "Print JSON (schema fusiongraph-bench-data/1)");
  return {c, [o] { return cmd_bench_data(*o); }};
}

}  // namespace fg::cli
