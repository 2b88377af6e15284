#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>

#include "framework/error.hpp"

namespace fg::cli {

// Bad command-line usage found after parsing (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void add_commands(CLI::App& app);
// Runs the parsed subcommand; returns the exit code.
int run_selected(CLI::App& app);

}  // namespace fg::cli
