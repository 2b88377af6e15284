// End to end: the reference graph run through the runtime agrees, node by node, with a
// composition of the naive reference implementations in tests/reference/ (plain loops in
// double), at a small image size with batch 2 and at the full 224x224 size with batch 1.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/model.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/reference/norm_merge.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::ref::Array;

std::string reference_yaml(int64_t image_size) {
  std::ifstream in(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const std::string from = "image: {shape: [224, 224, 3]}";
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), fmt::format("image: {{shape: [{0}, {0}, 3]}}", image_size));
  return text;
}

Array to_array(const fg::Tensor& t) {
  return Array{t.shape(), fg::test::to_doubles(t)};
}
std::vector<double> w(const fg::WeightStore& s, const std::string& key) {
  return fg::test::to_doubles(*s.find(key));
}
Array wa(const fg::WeightStore& s, const std::string& key) {
  return to_array(*s.find(key));
}

Array conv2d(const fg::WeightStore& s, const std::string& n, const Array& x) {
  return fg::ref::conv2d(x, wa(s, n + ".kernel"), w(s, n + ".bias"), 1, 1, 1, 1, "valid", "relu");
}
Array conv1d(const fg::WeightStore& s, const std::string& n, const Array& x) {
  return fg::ref::conv1d(x, wa(s, n + ".kernel"), w(s, n + ".bias"), 1, 1, "valid", "relu");
}
Array dense(const fg::WeightStore& s, const std::string& n, const Array& x, int64_t units,
            const std::string& act) {
  return Array{{x.shape[0], units},
               fg::ref::dense(x.data, x.shape, w(s, n + ".kernel"), w(s, n + ".bias"), units, act)};
}

// Every node's output, computed by the references.
std::map<std::string, Array> reference_outputs(const fg::WeightStore& s, const fg::Tensor& text,
                                               const fg::Tensor& image, const fg::Tensor& audio) {
  std::map<std::string, Array> r;
  const int64_t B = text.shape()[0], T = text.shape()[1];
  std::vector<int> ids(text.data<int32_t>(), text.data<int32_t>() + text.size());
  r["text_embedding"] = Array{
      {B, T, 64}, fg::ref::embedding(ids, s.find("text_embedding.embeddings")->data<float>(), 64)};
  std::vector<float> emb(r["text_embedding"].data.begin(), r["text_embedding"].data.end());
  fg::ref::RnnArgs a;
  a.lstm = true;
  a.batch = B;
  a.steps = T;
  a.features = 64;
  a.units = 32;
  a.x = emb.data();
  a.kernel = s.find("text_lstm.kernel")->data<float>();
  a.recurrent = s.find("text_lstm.recurrent_kernel")->data<float>();
  a.bias = s.find("text_lstm.bias")->data<float>();
  r["text_lstm"] = Array{{B, 32}, fg::ref::rnn(a)};

  r["image_conv1"] = conv2d(s, "image_conv1", to_array(image));
  r["image_pool1"] = fg::ref::pool2d(r["image_conv1"], true, 2, 2, 2, 2, "valid");
  r["image_conv2"] = conv2d(s, "image_conv2", r["image_pool1"]);
  r["image_pool2"] = fg::ref::pool2d(r["image_conv2"], true, 2, 2, 2, 2, "valid");
  r["image_conv3"] = conv2d(s, "image_conv3", r["image_pool2"]);
  r["image_pool3"] = fg::ref::pool2d(r["image_conv3"], true, 2, 2, 2, 2, "valid");
  const Array& p3 = r["image_pool3"];
  r["image_flatten"] =
      Array{{B, p3.size() / B}, p3.data};  // row-major NHWC is Keras's H, W, C order
  r["image_dense"] = dense(s, "image_dense", r["image_flatten"], 256, "relu");

  r["audio_conv1"] = conv1d(s, "audio_conv1", to_array(audio));
  r["audio_pool1"] = fg::ref::pool1d(r["audio_conv1"], true, 4, 4, "valid");
  r["audio_conv2"] = conv1d(s, "audio_conv2", r["audio_pool1"]);
  r["audio_pool2"] = fg::ref::pool1d(r["audio_conv2"], true, 4, 4, "valid");
  r["audio_conv3"] = conv1d(s, "audio_conv3", r["audio_pool2"]);
  r["audio_pool3"] = fg::ref::pool1d(r["audio_conv3"], true, 4, 4, "valid");
  r["audio_gap"] = fg::ref::global_pool(r["audio_pool3"], false);
  r["audio_dense"] = dense(s, "audio_dense", r["audio_gap"], 256, "relu");

  r["fusion"] =
      Array{{B, 544},
            fg::ref::concat({r["text_lstm"].data, r["image_dense"].data, r["audio_dense"].data},
                            {{B, 32}, {B, 256}, {B, 256}}, 1)};
  r["classifier"] = dense(s, "classifier", r["fusion"], 10, "softmax");
  return r;
}

void check_against_reference(int64_t image_size, int64_t batch, int64_t text_len,
                             int64_t audio_len) {
  auto def = fg::load_graph_string(reference_yaml(image_size), "multimodal_fusion.yaml");
  auto graph = std::make_shared<fg::CompiledGraph>(fg::compile_graph(def, fg::builtin_ops()));
  fg::WeightStore weights = fg::WeightStore::initialize(*graph, 7);
  // Glorot-initialised biases are zero: give them values so that bias handling is checked too.
  for (const auto& [key, t] : weights.tensors())
    if (key.size() > 5 && key.compare(key.size() - 5, 5, ".bias") == 0)
      weights.set(key,
                  fg::test::random_tensor(t.shape(), std::hash<std::string>{}(key), -0.1f, 0.1f));
  std::map<std::string, fg::Tensor> inputs = {
      {"text", fg::test::random_ints({batch, text_len}, 1, 1, 999)},
      {"image", fg::test::random_tensor({batch, image_size, image_size, 3}, 2, 0.f, 1.f)},
      {"audio", fg::test::random_tensor({batch, audio_len, 1}, 3, -1.f, 1.f)}};
  fg::Model model(graph, weights, fg::ModelOptions{});
  std::map<std::string, fg::Tensor> got;
  fg::RunOptions options;
  options.intermediates = &got;
  auto outputs = model.run(inputs, options);
  auto want = reference_outputs(weights, inputs["text"], inputs["image"], inputs["audio"]);
  for (const auto& [name, ref] : want) {
    CAPTURE(name);
    REQUIRE(got.count(name));
    fg::test::check_shape(got[name], ref.shape);
    double scale = 0;
    for (double v : ref.data) scale = std::max(scale, std::fabs(v));
    // f32 against double through long accumulations: relative 1e-4 of the tensor's scale
    fg::test::check_close(got[name], ref.data, 1e-4, 1e-4 * std::max(scale, 1e-3));
  }
  fg::test::check_close(outputs["classifier"], want["classifier"].data, 1e-4, 1e-6);
}

}  // namespace

TEST_CASE("the reference graph agrees with the naive references at a small size with batch 2") {
  check_against_reference(37, 2, 13, 613);
}

TEST_CASE("the reference graph agrees with the naive references at full size with batch 1") {
  check_against_reference(224, 1, 100, 16000);
}
