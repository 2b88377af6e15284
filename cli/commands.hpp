// graph-runner's commands. Each command has its own options struct, filled by CLI11 while
// parsing and handed to the command's function; nothing is global.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <fusiongraph/fusiongraph.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/arguments.hpp"

namespace fg::cli {

// A subcommand and what runs it (returning the exit code), with its options bound inside.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Adds every command to `app`; the returned commands own their parsed options.
std::vector<Command> add_commands(CLI::App& app);
// Runs the parsed subcommand; returns the exit code.
int run_selected(const std::vector<Command>& commands);

// Helpers shared by the commands.
// Loads a graph with its weights (`weights` file, else Keras-style initial weights of `seed`),
// checking CompileOptions; prints the compiler's warnings on stderr.
// A bf16 session on a CPU without native bf16 prints its precision warning on stderr once.
Session load_session(const std::string& graph, const std::string& weights, uint64_t seed,
                     int threads, bool optimize, uint64_t max_memory = 0,
                     std::optional<Precision> precision = std::nullopt);
// The options shared by the commands that read graphs at given sizes.
void add_threads_option(CLI::App* command, int& threads);
// --max-memory BYTES (parse it with parse_memory_size).
void add_max_memory_option(CLI::App* command, std::string& max_memory);
// --precision f32|bf16|int8 (default: int8 for an int8-quantized weights file, else f32); parse
// it with parse_precision_option.
void add_precision_option(CLI::App* command, std::string& precision);
// The precision named by --precision (or `flag`); "" (not given) -> nullopt; an unknown name
// is a UsageError naming the flag and listing the choices.
std::optional<Precision> parse_precision_option(const std::string& name,
                                                const std::string& flag = "--precision");
void add_seed_option(CLI::App* command, uint64_t& seed, const std::string& description);

// run.cpp, bench.cpp and train.cpp.
Command add_run_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_train_command(CLI::App& app);
// bench --train (bench_train.cpp): bench's options that apply to training steps.
struct TrainBenchOptions {
  std::string graph, batches, weights;
  std::vector<std::string> dims;
  uint64_t seed = 0;
  int threads = 0, warmup = 2, iterations = 10;
  bool json = false, per_node = false;
};
int cmd_bench_train(const TrainBenchOptions& options);
Command add_evaluate_command(CLI::App& app);
// import.cpp and verify.cpp (docs/import.md).
Command add_import_command(CLI::App& app);
Command add_verify_command(CLI::App& app);
// quantize.cpp (docs/quantization.md).
Command add_quantize_command(CLI::App& app);
// bench_data.cpp: the raw-data pipeline alone.
Command add_bench_data_command(CLI::App& app);

}  // namespace fg::cli
