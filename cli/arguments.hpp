// Reading graph-runner's arguments strictly: numbers in a stated range (no wrap-around, no NaN),
// NAME=VALUE lists where a name may appear once. Every problem is a usage error (exit 2) that
// names the flag and what was expected.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace fg::cli {

// Bad command-line usage found after parsing (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// CLI11 checks run on the text before it is converted: an integer in [lo, hi] written in
// decimal; an unsigned 64-bit integer; a finite number in [lo, hi].
CLI::Validator integer_in(int64_t lo, int64_t hi);
CLI::Validator unsigned_64();
CLI::Validator finite_in(double lo, double hi);

// train / evaluate: how tables are read (docs/data.md, "Pipeline" and "Cache").
struct DataPipelineOptions {
  int workers = 0;  // 0: the default (2, or the hardware threads when fewer)
  std::string cache;
  bool skip_bad_rows = false;
};
// --workers N, --cache DIR, --skip-bad-rows.
void add_data_pipeline_options(CLI::App* command, DataPipelineOptions& options);

// --dim NAME=SIZE[,SIZE...] -> sizes by input name (each name once, sizes positive).
std::map<std::string, std::vector<int64_t>> parse_dims(const std::vector<std::string>& specs);
// --input NAME=FILE -> file by input name (each name once).
std::map<std::string, std::string> parse_inputs(const std::vector<std::string>& specs);
// --max-memory: a count of bytes written as decimal digits, optionally followed by one of the
// suffixes K, M, G or T (either case; powers of 1024), e.g. 512M, 8G, 1073741824. 0 means the
// machine's physical memory. Anything else (fractions, other units, more than 2^64 - 1 bytes)
// is a usage error naming `flag`.
uint64_t parse_memory_size(const std::string& flag, const std::string& text);
// "1,8,32" -> positive sizes (`flag` names the option in messages).
std::vector<int64_t> parse_sizes(const std::string& flag, const std::string& spec);

}  // namespace fg::cli
