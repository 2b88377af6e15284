// summary / dot on the reference graph. The totals are the figures stated for the seed model
// (computed by hand from the Keras layer formulas), not read back from this code.
#include <doctest/doctest.h>

#include "framework/compiler.hpp"
#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {
fg::CompiledGraph reference_graph() {
  auto def = fg::load_graph_file(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  return fg::compile_graph(def, fg::builtin_ops());
}
}  // namespace

TEST_CASE("summary totals of the reference graph match the seed model") {
  auto g = reference_graph();
  fg::SummaryOptions o;
  o.dims = {{"text", {100}}, {"audio", {16000}}};
  fg::Summary s = fg::summarize(g, o);
  CHECK(s.total_params == 44944586);
  CHECK(s.trainable_params == 44944586);
  CHECK(static_cast<int64_t>(s.total_flops) == 4006960512LL);
  std::string table = fg::format_summary_table(s);
  CHECK(table.find("Total params: 44,944,586") != std::string::npos);
  CHECK(table.find("FLOPs per sample: 4,006,960,512") != std::string::npos);
  CHECK(table.find("image_flatten (flatten)") != std::string::npos);
  std::string json = fg::format_summary_json(s);
  CHECK(json.find("\"total_params\": 44944586") != std::string::npos);
  CHECK(json.find("\"flops_per_sample\": 4006960512") != std::string::npos);
}

TEST_CASE("summary output shapes follow the Keras shape rules") {
  auto g = reference_graph();
  fg::SummaryOptions o;
  o.dims = {{"text", {100}}, {"audio", {16000}}};
  fg::Summary s = fg::summarize(g, o);
  std::map<std::string, fg::Dims> want = {{"text_embedding", {-1, 100, 64}},
                                          {"text_lstm", {-1, 32}},
                                          {"image_conv1", {-1, 222, 222, 64}},
                                          {"image_pool1", {-1, 111, 111, 64}},
                                          {"image_conv2", {-1, 109, 109, 128}},
                                          {"image_pool2", {-1, 54, 54, 128}},
                                          {"image_conv3", {-1, 52, 52, 256}},
                                          {"image_pool3", {-1, 26, 26, 256}},
                                          {"image_flatten", {-1, 173056}},
                                          {"image_dense", {-1, 256}},
                                          {"audio_conv1", {-1, 15998, 64}},
                                          {"audio_pool1", {-1, 3999, 64}},
                                          {"audio_conv2", {-1, 3997, 128}},
                                          {"audio_pool2", {-1, 999, 128}},
                                          {"audio_conv3", {-1, 997, 256}},
                                          {"audio_pool3", {-1, 249, 256}},
                                          {"audio_gap", {-1, 256}},
                                          {"audio_dense", {-1, 256}},
                                          {"fusion", {-1, 544}},
                                          {"classifier", {-1, 10}}};
  CHECK(s.rows.size() == want.size());
  for (const auto& r : s.rows) {
    CAPTURE(r.node);
    REQUIRE(want.count(r.node));
    CHECK(r.shape == want[r.node]);
  }
}

TEST_CASE("without --dim the null dims stay symbolic and FLOPs are unknown") {
  auto g = reference_graph();
  fg::Summary s = fg::summarize(g, fg::SummaryOptions{});
  CHECK(s.total_params == 44944586);
  CHECK(s.total_flops < 0);
  for (const auto& r : s.rows)
    if (r.node == "audio_pool3") CHECK(r.shape == fg::Dims{-1, -1, 256});
  CHECK(fg::format_summary_table(s).find("--dim") != std::string::npos);
}

TEST_CASE("FLOPs scale with the null dims") {
  auto g = reference_graph();
  fg::SummaryOptions a, b;
  a.dims = {{"text", {100}}, {"audio", {16000}}};
  b.dims = {{"text", {200}}, {"audio", {16000}}};
  double fa = fg::summarize(g, a).total_flops, fb = fg::summarize(g, b).total_flops;
  // the LSTM's matmuls are 2 * T * (64 * 128 + 32 * 128) FLOPs
  CHECK(fb - fa == doctest::Approx(2.0 * 100 * (64 * 128 + 32 * 128)));
}

TEST_CASE("dot shows every node, shapes on the edges and one cluster per modality") {
  auto g = reference_graph();
  std::string dot = fg::format_dot(g, fg::SummaryOptions{});
  CHECK(dot.rfind("digraph", 0) == 0);
  for (const auto& n : g.nodes()) CHECK(dot.find("\"" + n.def->name + "\" [") != std::string::npos);
  CHECK(dot.find("cluster_text") != std::string::npos);
  CHECK(dot.find("cluster_image") != std::string::npos);
  CHECK(dot.find("cluster_audio") != std::string::npos);
  CHECK(dot.find("\"image_pool3\" -> \"image_flatten\" [label=\"(None, 26, 26, 256)\"]") !=
        std::string::npos);
  CHECK(dot.find("\"audio_dense\" -> \"fusion\" [label=\"(None, 256)\"]") != std::string::npos);
}
