// The catalogue of malformed graphs: every file in tests/malformed/ states in its leading
// comments what the compiler must say about it:
//   # expect: LINE:COL            the error's position
//   # expect-node: NAME           the error names this node and points at its line
//   # expect-text: a|b|c          substrings of the message (hint included)
//   # expect-warning: text        compiles, with a warning containing text
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

struct Expectation {
  int line = 0, column = 0;
  std::string node;
  std::vector<std::string> texts;
  std::vector<std::string> warnings;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

Expectation read_expectation(const std::string& text) {
  Expectation e;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.rfind("# expect: ", 0) == 0) {
      sscanf(line.c_str() + 10, "%d:%d", &e.line, &e.column);
    } else if (line.rfind("# expect-node: ", 0) == 0) {
      e.node = line.substr(15);
    } else if (line.rfind("# expect-text: ", 0) == 0) {
      for (auto& t : split(line.substr(15), '|')) e.texts.push_back(t);
    } else if (line.rfind("# expect-warning: ", 0) == 0) {
      e.warnings.push_back(line.substr(18));
    }
  }
  return e;
}

int line_of_node(const std::string& text, const std::string& node) {
  auto lines = split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find("{name: " + node + ",") != std::string::npos) return static_cast<int>(i + 1);
  return -1;
}

}  // namespace

TEST_CASE("every malformed graph in the catalogue is rejected as its comments say") {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fg::test::source_path("tests/malformed")))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 40);
  for (const auto& path : files) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    const std::string label = "tests/malformed/" + path.filename().string();
    CAPTURE(label);
    Expectation want = read_expectation(text);
    REQUIRE_MESSAGE((!want.texts.empty() || !want.warnings.empty()),
                    "the file states no expectation");
    std::string message;
    try {
      auto def = fg::load_graph_string(text, label);
      auto graph = fg::compile_graph(def, fg::builtin_ops());
      std::string warnings;
      for (const auto& w : graph.warnings()) warnings += w.format() + "\n";
      CAPTURE(warnings);
      CHECK_MESSAGE(!want.warnings.empty(), "compiled without error, but an error was expected");
      for (const auto& w : want.warnings)
        CHECK_MESSAGE(warnings.find(w) != std::string::npos,
                      (std::string("missing warning: ") + w));
      continue;
    } catch (const fg::Error& e) {
      message = e.what();
      CAPTURE(message);
      CHECK_MESSAGE(want.warnings.empty(), "an error where only a warning was expected");
      CHECK(message.rfind(label, 0) == 0);  // the message starts with the file name
      if (want.line > 0) {
        CHECK(e.loc().line == want.line);
        CHECK(e.loc().column == want.column);
        CHECK(message.find(fmt::format("{}:{}:{}: error: ", label, want.line, want.column)) == 0);
      }
      if (!want.node.empty()) {
        CHECK(e.node_name() == want.node);
        CHECK(e.loc().line == line_of_node(text, want.node));
      }
      for (const auto& t : want.texts)
        CHECK_MESSAGE(message.find(t) != std::string::npos, (std::string("missing text: ") + t));
    }
  }
}

TEST_CASE("the seed model as written is rejected at the fusion node with the audio shape") {
  auto def = fg::load_graph_file(fg::test::source_path("graphs/seed_as_written.yaml"));
  try {
    fg::compile_graph(def, fg::builtin_ops());
    FAIL("seed_as_written.yaml compiled");
  } catch (const fg::Error& e) {
    std::string message = e.what();
    CAPTURE(message);
    CHECK(e.node_name() == "fusion");
    CHECK(e.op_name() == "concatenate");
    CHECK(e.loc().line == 34);
    CHECK(message.find("audio_dense: (None, None, 256)") != std::string::npos);
    CHECK(message.find("text_lstm: (None, 32)") != std::string::npos);
    CHECK(message.find("image_dense: (None, 256)") != std::string::npos);
    CHECK(message.find("global_average_pooling1d") != std::string::npos);
    CHECK(message.find("flatten") != std::string::npos);
  }
}

TEST_CASE("every graph under graphs/ except the seed as written validates") {
  namespace fs = std::filesystem;
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fg::test::source_path("graphs"))) {
    if (entry.path().extension() != ".yaml" || entry.path().filename() == "seed_as_written.yaml")
      continue;
    CAPTURE(entry.path().string());
    auto def = fg::load_graph_file(entry.path().string());
    CHECK_NOTHROW(fg::compile_graph(def, fg::builtin_ops()));
    ++count;
  }
  CHECK(count >= 1);
}
