// The fusion graph variants (graphs/multimodal_fusion_{weighted_average,gated,film}.yaml and
// graphs/feature_pyramid.yaml): they validate, `summary` gives the parameter count computed here
// by hand from the Keras formulas, they run end to end with `init` weights (softmax rows finite
// and summing to 1), and `graph-runner dot` names the fusion ops.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

std::string read_graph(const std::string& name) {
  std::ifstream in(fg::test::source_path("graphs/" + name));
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fg::CompiledGraph compile_text(const std::string& text, const std::string& file) {
  return fg::compile_graph(fg::load_graph_string(text, file), fg::builtin_ops());
}

// Keras parameter counts.
int64_t dense(int64_t in, int64_t units) {
  return in * units + units;
}
int64_t conv(int64_t k, int64_t cin, int64_t filters) {
  return k * cin * filters + filters;  // k = kernel area
}
int64_t lstm(int64_t in, int64_t units) {
  return 4 * units * (in + units + 1);
}

// The encoders shared with multimodal_fusion.yaml (image_dense after a 26x26x256 flatten).
int64_t text_params() {
  return 1000 * 64 + lstm(64, 32);
}
int64_t image_cnn_params() {
  return conv(9, 3, 64) + conv(9, 64, 128) + conv(9, 128, 256);
}
int64_t audio_params() {
  return conv(3, 1, 64) + conv(3, 64, 128) + conv(3, 128, 256) + dense(256, 256);
}
int64_t image_dense_params() {
  return dense(26 * 26 * 256, 256);
}

struct Case {
  const char* file;
  int64_t params;
  std::vector<std::string> ops;  // fusion ops the graph uses
  int64_t image;                 // image side for the end-to-end run
};

std::vector<Case> cases() {
  const int64_t common = text_params() + image_cnn_params() + audio_params();
  const int64_t wa = common + image_dense_params() + dense(32, 256) + 3 + dense(256, 10);
  const int64_t gated = common + image_dense_params() +
                        (32 * 256 + 256 * 256 + 256 * 256 + 3 * 256) + (544 * 768 + 768) +
                        dense(256, 10);
  const int64_t film = common + image_dense_params() + 2 * (288 * 256 + 256) + dense(256 + 288, 10);
  const int64_t fpn =
      common + conv(1, 64, 64) + conv(1, 128, 64) + conv(1, 256, 64) + dense(32 + 64 + 256, 10);
  return {{"multimodal_fusion_weighted_average.yaml", wa, {"weighted_average"}, 37},
          {"multimodal_fusion_gated.yaml", gated, {"gated"}, 37},
          {"multimodal_fusion_film.yaml", film, {"film"}, 37},
          {"feature_pyramid.yaml", fpn, {"upsampling2d"}, 64}};
}

std::string with_image_size(std::string text, int64_t side) {
  const std::string from = "image: {shape: [224, 224, 3]}";
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), fmt::format("image: {{shape: [{0}, {0}, 3]}}", side));
  return text;
}

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string run_cli(const std::string& args) {
  std::string cmd = fg::test::graph_runner_path() + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return out;
}

}  // namespace

TEST_CASE("the fusion graph variants validate and summary counts the Keras parameters") {
  for (const Case& c : cases()) {
    CAPTURE(c.file);
    auto g = compile_text(read_graph(c.file), c.file);
    fg::SummaryOptions o;
    o.dims = {{"text", {100}}, {"audio", {16000}}};
    const fg::Summary s = fg::summarize(g, o);
    CHECK(s.total_params == c.params);
    CHECK(s.trainable_params == c.params);
    CHECK(s.total_flops > 0);
    bool has_classifier = false;
    for (const auto& r : s.rows)
      if (r.node == "classifier") {
        has_classifier = true;
        CHECK(r.shape == fg::Dims{-1, 10});
      }
    CHECK(has_classifier);
  }
}

TEST_CASE("the feature pyramid stages line up at 224") {
  auto g = compile_text(read_graph("feature_pyramid.yaml"), "feature_pyramid.yaml");
  fg::SummaryOptions o;
  o.dims = {{"text", {100}}, {"audio", {16000}}};
  std::map<std::string, fg::Dims> want = {{"image_pool3", {-1, 28, 28, 256}},
                                          {"fpn_up3", {-1, 56, 56, 64}},
                                          {"fpn_p2", {-1, 56, 56, 64}},
                                          {"fpn_up2", {-1, 112, 112, 64}},
                                          {"fpn_p1", {-1, 112, 112, 64}},
                                          {"image_gap", {-1, 64}},
                                          {"fusion", {-1, 352}}};
  int seen = 0;
  for (const auto& r : fg::summarize(g, o).rows)
    if (want.count(r.node)) {
      CAPTURE(r.node);
      CHECK(r.shape == want[r.node]);
      ++seen;
    }
  CHECK(seen == static_cast<int>(want.size()));
}

TEST_CASE("the fusion graph variants run end to end with init weights") {
  for (const Case& c : cases()) {
    CAPTURE(c.file);
    auto graph = std::make_shared<fg::CompiledGraph>(
        compile_text(with_image_size(read_graph(c.file), c.image), c.file));
    fg::WeightStore weights = fg::WeightStore::initialize(*graph, 11);
    fg::Model model(graph, weights, fg::ModelOptions{});
    for (int64_t batch : {1, 3}) {
      CAPTURE(batch);
      std::map<std::string, fg::Tensor> inputs = {
          {"text", fg::test::random_ints({batch, 13}, 1, 1, 999)},
          {"image", fg::test::random_tensor({batch, c.image, c.image, 3}, 2, 0.f, 1.f)},
          {"audio", fg::test::random_tensor({batch, 613, 1}, 3, -1.f, 1.f)}};
      auto out = model.run(inputs);
      const fg::Tensor& p = out.at("classifier");
      REQUIRE(p.shape() == fg::Dims{batch, 10});
      for (int64_t b = 0; b < batch; ++b) {
        double sum = 0;
        for (int64_t k = 0; k < 10; ++k) {
          const float v = p.data<float>()[b * 10 + k];
          CHECK(std::isfinite(v));
          CHECK(v >= 0.f);
          sum += v;
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("graph-runner dot and summary name the fusion ops") {
  for (const Case& c : cases()) {
    CAPTURE(c.file);
    const std::string path = fg::test::source_path(std::string("graphs/") + c.file);
    const std::string dot = run_cli("dot " + path);
    for (const auto& op : c.ops) CHECK(dot.find(op) != std::string::npos);
    const std::string summary = run_cli("summary " + path + " --dim text=100 --dim audio=16000");
    CHECK(summary.find("Total params: " + with_commas(c.params)) != std::string::npos);
    for (const auto& op : c.ops) CHECK(summary.find("(" + op + ")") != std::string::npos);
  }
}
