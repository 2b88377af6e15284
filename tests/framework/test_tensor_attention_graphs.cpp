// The tensor / low-rank / cross-attention fusion graphs: they validate, their `summary`
// parameter counts equal a hand computation from the Keras layer formulas (written out here,
// not read from the code), and they run end to end with `init` weights (small image and audio
// sizes) to finite softmax outputs that sum to 1.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

// Keras parameter formulas.
int64_t dense(int64_t in, int64_t units) {
  return in * units + units;
}
int64_t conv(int64_t kernel_area, int64_t in, int64_t filters) {
  return kernel_area * in * filters + filters;
}
int64_t lstm(int64_t in, int64_t units) {
  return 4 * units * (in + units + 1);
}

// The reference graph's three encoders (embedding 1000x64 + LSTM 32; image convs + dense 256 on
// the 26x26x256 flatten; audio convs + dense 256).
int64_t text_branch() {
  return 1000 * 64 + lstm(64, 32);
}
int64_t image_branch() {
  return conv(9, 3, 64) + conv(9, 64, 128) + conv(9, 128, 256) + dense(26 * 26 * 256, 256);
}
int64_t audio_convs() {
  return conv(3, 1, 64) + conv(3, 64, 128) + conv(3, 128, 256);
}

std::string read(const std::string& relative) {
  std::ifstream in(fg::test::source_path(relative));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fg::CompiledGraph compile(const std::string& text, const std::string& file) {
  return fg::compile_graph(fg::load_graph_string(text, file), fg::builtin_ops());
}

int64_t params_of(const std::string& relative) {
  auto g = compile(read(relative), relative);
  fg::SummaryOptions o;
  o.dims = {{"text", {100}}, {"audio", {16000}}};
  return fg::summarize(g, o).total_params;
}

// The graph with a smaller image (when it has one), run with init weights on batch 3.
void run_small(const std::string& relative, bool has_image) {
  CAPTURE(relative);
  std::string text = read(relative);
  if (has_image) {
    const std::string from = "image: {shape: [224, 224, 3]}";
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), "image: {shape: [32, 32, 3]}");
  }
  auto g = std::make_shared<fg::CompiledGraph>(compile(text, relative));
  fg::Model model(g, fg::WeightStore::initialize(*g, 7));
  const int64_t B = 3, T = 12;
  // ids in 0..999 with padding (0) at the end of sample 0 and 1
  fg::Tensor ids = fg::test::random_ints({B, T}, 5, 1, 999);
  int32_t* p = ids.mutable_data<int32_t>();
  for (int64_t t = 8; t < T; ++t) p[t] = 0;
  for (int64_t t = 3; t < T; ++t) p[T + t] = 0;
  std::map<std::string, fg::Tensor> feeds{{"text", ids},
                                          {"audio", fg::test::random_tensor({B, 400, 1}, 6)}};
  if (has_image) feeds["image"] = fg::test::random_tensor({B, 32, 32, 3}, 8, 0.f, 1.f);
  std::vector<fg::StepTiming> profile;
  fg::RunOptions options;
  options.profile = &profile;
  auto out = model.run(feeds, options);
  bool fusion_ran = false;
  for (const auto& s : profile)
    if (s.name == "fusion") {
      fusion_ran = true;
      CAPTURE(s.impl);
      CHECK(s.impl.find("ref") == std::string::npos);  // no oneDNN reference kernels
    }
  CHECK(fusion_ran);
  const fg::Tensor& y = out.at("classifier");
  fg::test::check_shape(y, {B, 10});
  const float* v = y.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0;
    for (int64_t k = 0; k < 10; ++k) {
      CHECK(std::isfinite(v[b * 10 + k]));
      CHECK(v[b * 10 + k] >= 0.f);
      sum += v[b * 10 + k];
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
  }
}

}  // namespace

TEST_CASE("multimodal_fusion_tensor validates with the hand-computed parameter count") {
  const int64_t fused = (16 + 1) * (32 + 1) * (32 + 1);  // 18,513
  const int64_t want = text_branch() + image_branch() + audio_convs() + dense(256, 256) +
                       dense(32, 16) + dense(256, 32) + dense(256, 32) + dense(fused, 10);
  CHECK(params_of("graphs/multimodal_fusion_tensor.yaml") == want);
  auto g = compile(read("graphs/multimodal_fusion_tensor.yaml"), "t.yaml");
  CHECK(g.tensors()[g.find_tensor("fusion")].type.shape == fg::Dims{fg::kDynamic, fused});
}

TEST_CASE("multimodal_fusion_low_rank validates with the hand-computed parameter count") {
  const int64_t rank = 4, units = 64;
  const int64_t factors = rank * (32 + 1) * units + 2 * rank * (256 + 1) * units + units;
  const int64_t want =
      text_branch() + image_branch() + audio_convs() + dense(256, 256) + factors + dense(units, 10);
  CHECK(params_of("graphs/multimodal_fusion_low_rank.yaml") == want);
}

TEST_CASE("multimodal_fusion_cross_attention validates with the hand-computed parameter count") {
  const int64_t heads = 4, key_dim = 8, width = 32;
  // query/key/value kernels [32, 4, 8] + biases [4, 8], output kernel [4, 8, 32] + bias [32]
  const int64_t attention =
      3 * (width * heads * key_dim + heads * key_dim) + heads * key_dim * width + width;
  const int64_t want =
      text_branch() + audio_convs() + dense(256, width) + attention + dense(width, 10);
  CHECK(params_of("graphs/multimodal_fusion_cross_attention.yaml") == want);
  auto g = compile(read("graphs/multimodal_fusion_cross_attention.yaml"), "t.yaml");
  CHECK(g.tensors()[g.find_tensor("fusion")].type.masked);
  CHECK(g.tensors()[g.find_tensor("fusion")].type.shape ==
        fg::Dims{fg::kDynamic, fg::kDynamic, width});
}

TEST_CASE("the fusion graphs run end to end with init weights") {
  run_small("graphs/multimodal_fusion_tensor.yaml", true);
  run_small("graphs/multimodal_fusion_low_rank.yaml", true);
  run_small("graphs/multimodal_fusion_cross_attention.yaml", false);
}
