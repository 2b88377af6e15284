// Running graph-runner as a user does, for the tests in tests/cli.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "tests/test_util.hpp"

namespace fg::test {

struct CliResult {
  int code = -1;
  std::string out;  // stdout (and stderr if merged)
};

inline CliResult run_cli(const std::string& args, bool merge_stderr = true) {
  std::string cmd = graph_runner_path() + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
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

}  // namespace fg::test
