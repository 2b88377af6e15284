#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "kernels/tensor.hpp"

namespace fg::cli {

// Bad command-line usage found after parsing (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void add_commands(CLI::App& app);
// Runs the parsed subcommand; returns the exit code.
int run_selected(CLI::App& app);

// Helpers shared by the commands (commands.cpp).
// --dim NAME=SIZE[,SIZE...] -> sizes by input name; UsageError if malformed.
std::map<std::string, std::vector<int64_t>> parse_dims(const std::vector<std::string>& specs);
// Loads and compiles a graph file; prints the compiler's warnings on stderr.
std::shared_ptr<CompiledGraph> load(const std::string& path);
// Sizes for null dims: those given, else the input's default_shape, else 100.
std::map<std::string, std::vector<int64_t>> dims_with_defaults(
    const CompiledGraph& g, std::map<std::string, std::vector<int64_t>> dims);
// Deterministic synthetic input: floats in [0, 1); token ids in [1, vocab).
Tensor synthetic_input(const CompiledGraph& g, const InputDef& in, const Dims& shape,
                       uint64_t seed);

// bench.cpp: the `bench` command.
void add_bench_command(CLI::App& app);
int cmd_bench();

}  // namespace fg::cli
