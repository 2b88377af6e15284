// Running graph-runner as a user does, for the tests in tests/cli.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util.hpp"

namespace fg::test {

struct CliResult {
  int code = -1;
  std::string out;  // stdout (and stderr if merged)
};

// A shell command's exit code and output.
inline CliResult run_command(const std::string& cmd) {
  CliResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline CliResult run_cli(const std::string& args, bool merge_stderr = true) {
  return run_command(graph_runner_path() + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null"));
}

// graph-runner under a shell command prefix (e.g. `ulimit -v`), stderr merged.
inline CliResult run_cli_under(const std::string& prefix, const std::string& args) {
  return run_command(prefix + "; " + graph_runner_path() + " " + args + " 2>&1");
}

// A fresh directory under the system's temporary folder, removed with the object.
struct NamedTempDir {
  std::string path;
  NamedTempDir(const std::string& prefix, const std::string& name) {
    path = (std::filesystem::temp_directory_path() /
            (prefix + "_" + name + "_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~NamedTempDir() { std::filesystem::remove_all(path); }
};

inline std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

}  // namespace fg::test
