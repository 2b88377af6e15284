// The folders are layers (docs/architecture.md): framework/ -> kernels/ -> layers/ -> engine/
// -> cli/. A file may include its own layer and those below it, never one above; framework/
// includes no oneDNN. This test reads every source file's #include lines, so a new upward
// include fails here, by file and line, before it becomes a tangle.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/test_util.hpp"

namespace fs = std::filesystem;

namespace {

struct Include {
  std::string file;
  int line = 0;
  std::string target;  // as written between the quotes or brackets
};

std::vector<Include> includes_under(const std::string& folder) {
  std::vector<Include> out;
  const std::regex include_line(R"(^\s*#\s*include\s*[<"]([^>"]+)[>"])");
  for (const auto& entry : fs::recursive_directory_iterator(fg::test::source_path(folder))) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".cpp" && ext != ".hpp") continue;
    std::ifstream in(entry.path());
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      std::smatch m;
      if (std::regex_search(text, m, include_line))
        out.push_back({fs::relative(entry.path(), fg::test::source_path("")).string(), n, m[1]});
    }
  }
  return out;
}

// The project folder an include names ("" for the standard library and other packages).
std::string project_folder(const std::string& target) {
  for (const char* folder : {"framework/", "kernels/", "layers/", "engine/", "cli/", "python/"})
    if (target.rfind(folder, 0) == 0) return std::string(folder, std::string(folder).size() - 1);
  if (target.rfind("fusiongraph/", 0) == 0) return "include";
  return "";
}

void check_layer(const std::string& folder, const std::set<std::string>& allowed) {
  for (const Include& inc : includes_under(folder)) {
    const std::string to = project_folder(inc.target);
    INFO(inc.file << ":" << inc.line << " includes " << inc.target);
    if (!to.empty()) CHECK(allowed.count(to) == 1);
  }
}

}  // namespace

TEST_CASE("framework/ includes nothing above it and no oneDNN") {
  check_layer("framework", {"framework"});
  for (const Include& inc : includes_under("framework")) {
    INFO(inc.file << ":" << inc.line << " includes " << inc.target);
    CHECK(inc.target.find("dnnl") == std::string::npos);
  }
}

TEST_CASE("kernels/ includes only the framework below it") {
  check_layer("kernels", {"framework", "kernels"});
}

TEST_CASE("layers/ include the kernel layer and the framework, not the engine") {
  check_layer("layers", {"framework", "kernels", "layers"});
}

TEST_CASE("engine/ includes no command-line code") {
  check_layer("engine", {"framework", "kernels", "layers", "engine", "include"});
}

TEST_CASE("cli/ is a client of the public API") {
  // graph-runner uses <fusiongraph/fusiongraph.hpp> (Session, CompileOptions, RunOptions, the
  // file helpers) and its own files only; bench's measurements (FMA peak, process statistics)
  // live in cli/perf/, since they are the tool's, not the library's.
  check_layer("cli", {"cli", "include"});
}

TEST_CASE("python/ is a client of the public API") {
  // the Python module (python/src/) binds <fusiongraph/...> and nothing underneath, as
  // graph-runner does
  check_layer("python", {"python", "include"});
}

TEST_CASE("the layering check sees includes and can fail") {
  // the reader finds the includes of a known file, and a wrong rule would be caught
  bool found = false;
  for (const Include& inc : includes_under("layers"))
    if (inc.file == "layers/registry.cpp" && inc.target == "layers/registry.hpp") found = true;
  CHECK(found);
  CHECK(project_folder("engine/plan.hpp") == "engine");
  CHECK(project_folder("fusiongraph/fusiongraph.hpp") == "include");
  CHECK(project_folder("vector").empty());
}
