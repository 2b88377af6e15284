// graph-runner: the command line of FusionGraph. Only this file catches every exception:
// fg::Error -> its message on stderr, exit 1; bad command-line usage -> exit 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"graph-runner: validate, inspect and run FusionGraph YAML graphs on oneDNN"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  graph-runner validate graphs/*.yaml\n"
      "  graph-runner summary graphs/multimodal_fusion.yaml --dim text=100 --dim audio=16000\n"
      "  graph-runner dot graphs/multimodal_fusion.yaml | dot -Tsvg > graph.svg\n"
      "  graph-runner init graphs/multimodal_fusion.yaml -o weights.safetensors\n"
      "  graph-runner run graphs/multimodal_fusion.yaml\n"
      "  graph-runner run g.yaml --weights w.safetensors --input image=shoe.png --input "
      "text=\"a boot\"\n"
      "  graph-runner bench-data --synthetic 64 --workers 1,2\n"
      "Run `graph-runner COMMAND --help` for a command's options.");
  const std::vector<fg::cli::Command> commands = fg::cli::add_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    return fg::cli::run_selected(commands);
  } catch (const fg::cli::UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const fg::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 1;
  }
}
