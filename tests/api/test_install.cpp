// The installed package works from another project: install this build tree into a temporary
// prefix, configure and build examples/custom_fusion against it (find_package(FusionGraph)),
// run it. Only this file knows the paths (see cmake/install.cmake).
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

std::string quote(const fs::path& p) {
  return "\"" + p.string() + "\"";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `command` with stdout and stderr appended to `log`; returns the exit status.
int run(const std::string& command, const fs::path& log) {
  { std::ofstream(log, std::ios::app) << "$ " << command << "\n"; }
  const int status = std::system((command + " >> " + quote(log) + " 2>&1").c_str());
  return status == 0 ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : 128);
}

}  // namespace

TEST_CASE("install the package and build examples/custom_fusion against it") {
  const fs::path work = fs::path(FG_BINARY_DIR) / "install-test";
  const fs::path prefix = work / "prefix", build = work / "build", log = work / "log.txt";
  fs::remove_all(work);
  fs::create_directories(work);
  const std::string cmake = quote(FG_CMAKE_COMMAND);

  int rc = run(cmake + " --install " + quote(FG_BINARY_DIR) + " --prefix " + quote(prefix), log);
  INFO("log (" << log.string() << "):\n" << read_all(log));
  REQUIRE(rc == 0);
  // the public headers, the internal ones they include, the package files, graph-runner
  CHECK(fs::exists(prefix / "include/fusiongraph/fusiongraph.hpp"));
  CHECK(fs::exists(prefix / "include/fusiongraph/extension.hpp"));
  CHECK(fs::exists(prefix / "include/fusiongraph/framework/op.hpp"));
  CHECK(fs::exists(prefix / "bin/graph-runner"));
  CHECK(fs::exists(prefix / "lib/cmake/FusionGraph/FusionGraphConfig.cmake"));
  CHECK(fs::exists(prefix / "lib/cmake/FusionGraph/FusionGraphConfigVersion.cmake"));
  // private headers stay private
  CHECK_FALSE(fs::exists(prefix / "include/fusiongraph/engine/plan.hpp"));
  CHECK_FALSE(fs::exists(prefix / "include/fusiongraph/layers"));

  // the installed graph-runner runs
  rc = run(quote(prefix / "bin/graph-runner") + " validate " +
               quote(fs::path(FG_SOURCE_DIR) / "graphs/multimodal_fusion.yaml"),
           log);
  CHECK(rc == 0);

  std::string configure =
      cmake + " -S " + quote(fs::path(FG_SOURCE_DIR) / "examples/custom_fusion") + " -B " +
      quote(build) + " -DCMAKE_PREFIX_PATH=" + quote(prefix) +
      " -DCMAKE_BUILD_TYPE=" + FG_BUILD_TYPE + " -DCMAKE_CXX_COMPILER=" + quote(FG_CXX_COMPILER);
  if (std::string(FG_CCACHE_PROGRAM).find("NOTFOUND") == std::string::npos &&
      !std::string(FG_CCACHE_PROGRAM).empty())
    configure += " -DCMAKE_CXX_COMPILER_LAUNCHER=" + quote(FG_CCACHE_PROGRAM);
  rc = run(configure, log);
  REQUIRE(rc == 0);
  rc = run(cmake + " --build " + quote(build), log);
  REQUIRE(rc == 0);

  const fs::path out = work / "custom_fusion.txt";
  rc = run(quote(build / "custom_fusion"), out);
  const std::string output = read_all(out);
  INFO("custom_fusion output:\n" << output);
  CHECK(rc == 0);
  CHECK(output.find("custom_fusion: ok") != std::string::npos);
  CHECK(output.find("fusion (max_fusion)") != std::string::npos);  // the summary names the op
}

#ifdef FG_PYTHON
TEST_CASE("the installed Python module imports, runs and trains from the prefix") {
  const fs::path work = fs::path(FG_BINARY_DIR) / "install-test-python";
  const fs::path prefix = work / "prefix", log = work / "log.txt", out = work / "out.txt";
  fs::remove_all(work);
  fs::create_directories(work);
  int rc = run(
      quote(FG_CMAKE_COMMAND) + " --install " + quote(FG_BINARY_DIR) + " --prefix " + quote(prefix),
      log);
  INFO("log (" << log.string() << "):\n" << read_all(log));
  REQUIRE(rc == 0);
  fs::path site;  // <prefix>/lib/python3.X/dist-packages
  for (const auto& entry : fs::directory_iterator(prefix / "lib"))
    if (entry.path().filename().string().rfind("python3", 0) == 0)
      site = entry.path() / "dist-packages";
  REQUIRE_MESSAGE(fs::exists(site / "fusiongraph/__init__.py"), site.string());
  CHECK(fs::exists(site / "fusiongraph/_core.pyi"));
  const std::string graph =
      (fs::path(FG_SOURCE_DIR) / "tests/python/graphs/tiny_fusion.yaml").string();
  const std::string script =
      "import numpy as np, fusiongraph as fg\n"
      "assert fg.__file__.startswith('" +
      site.string() +
      "'), fg.__file__\n"
      "m = fg.load('" +
      graph +
      "', threads=1)\n"
      "x = {'tokens': np.ones((6, 7), np.int32), 'features': np.zeros((6, 13), np.float32)}\n"
      "y = {'classifier': np.eye(3, dtype=np.float32)[np.arange(6) % 3]}\n"
      "h = m.fit(x, y, epochs=1, verbose=0)\n"
      "print('installed module:', m.predict(x).shape, sorted(h.history))\n";
  std::ofstream(work / "check.py") << script;
  rc = run("cd " + quote(work) + " && PYTHONPATH=" + quote(site) + " " + quote(FG_PYTHON) + " " +
               quote(work / "check.py"),
           out);
  const std::string output = read_all(out);
  INFO("python output:\n" << output);
  CHECK(rc == 0);
  CHECK(output.find("installed module: (6, 3) ['accuracy', 'loss']") != std::string::npos);
}
#endif
