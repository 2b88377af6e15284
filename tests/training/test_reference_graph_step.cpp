// One training step of the reference graph (graphs/multimodal_fusion.yaml: text embedding +
// LSTM, three conv2d / max-pool blocks + dense, three conv1d / max-pool blocks + global average
// pooling + dense, concatenation, a 10-way softmax classifier) at a small size (image 32x32x3,
// audio 300 samples, text 12 tokens, batch 2), checked from the outside:
//   - the TrainingPlan's loss against a naive double-precision forward composed from the op
//     references in tests/reference/ plus softmax crossentropy (mean over the batch);
//   - every weight tensor's gradient against central finite differences of that naive loss:
//     a few sampled entries and one random direction over the whole tensor;
//   - the same step with 1 and 2 threads;
//   - one Adam step through fg::Trainer::train_on_batch against Keras's Adam formula applied to
//     the plan's gradient.
// The plans run with the arena filled with NaN, so a read before a write shows.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/training/losses.hpp"
#include "engine/training/parameter_store.hpp"
#include "engine/training/training_plan.hpp"
#include "fusiongraph/training.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/reference/norm_merge.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

constexpr int64_t kBatch = 2, kTokens = 12, kSamples = 300, kSide = 32, kClasses = 10;
constexpr int kVocabulary = 1000;
constexpr uint64_t kInitSeed = 3;
// Finite-difference steps: small enough that (almost) no ReLU or max-pool choice flips within
// them (at 1e-5 some of audio_conv1's do; a direction moves every entry, so it takes a smaller
// step), large against double rounding (~1e-16 of a loss of ~2). With them the plan's float32
// gradients agree to ~1e-6 of each tensor's scale; the tolerance (kTolerance) leaves a margin.
constexpr double kEps = 1e-6, kDirectionEps = 1e-7, kTolerance = 1e-3;

using Doubles = std::vector<double>;
using WeightMap = std::map<std::string, ref::Array>;  // "<node>.<param>" -> Keras layout

// The reference graph's nodes, read from graphs/multimodal_fusion.yaml, under inputs of fixed
// small shapes and a training section (adam, learning rate 0.001, categorical crossentropy).
std::string small_reference_yaml() {
  std::ifstream file(source_path("graphs/multimodal_fusion.yaml"));
  std::stringstream text;
  text << file.rdbuf();
  const std::string whole = text.str();
  const size_t nodes = whole.find("\nnodes:\n"), training = whole.find("\ntraining:");
  REQUIRE(nodes != std::string::npos);
  REQUIRE(training != std::string::npos);
  return fmt::format(
      "name: multimodal_fusion_small\ninputs:\n"
      "  text:  {{shape: [{}], dtype: int32}}\n"
      "  image: {{shape: [{}, {}, 3]}}\n"
      "  audio: {{shape: [{}, 1]}}{}\n"
      "training:\n"
      "  loss: categorical_crossentropy\n"
      "  optimizer: {{name: adam, learning_rate: 0.001}}\n",
      kTokens, kSide, kSide, kSamples, whole.substr(nodes, training - nodes));
}

// Token ids with repeats (within a sequence and across the batch), so that the embedding's
// gradient must add the rows' contributions up; random image and audio; one-hot targets.
struct StepData {
  Tensor text = text_with_repeats();
  Tensor image = random_tensor({kBatch, kSide, kSide, 3}, 22);
  Tensor audio = random_tensor({kBatch, kSamples, 1}, 23);
  Tensor targets = make_tensor({kBatch, kClasses}, one_hot_rows({3, 7}));

  static Tensor text_with_repeats() {
    Tensor t = random_ints({kBatch, kTokens}, 21, 0, kVocabulary - 1);
    int32_t* ids = t.mutable_data<int32_t>();
    ids[5] = ids[2];            // twice in the first sequence
    ids[kTokens + 4] = ids[0];  // in both sequences
    ids[kTokens + 9] = ids[0];
    return t;
  }
  static std::vector<float> one_hot_rows(const std::vector<int>& classes) {
    std::vector<float> v(classes.size() * kClasses, 0.f);
    for (size_t b = 0; b < classes.size(); ++b) v[b * kClasses + classes[b]] = 1.f;
    return v;
  }
  std::map<std::string, Tensor> inputs() const {
    return {{"text", text}, {"image", image}, {"audio", audio}};
  }
};

// ---- the naive reference step ----

// A chain of nodes of one branch: `run` maps the input of its first node to the output of its
// last one.
struct Stage {
  std::vector<std::string> nodes;
  std::function<ref::Array(const ref::Array&, const WeightMap&)> run;
};

ref::Array conv2d_relu(const ref::Array& x, const WeightMap& w, const std::string& node) {
  return ref::conv2d(x, w.at(node + ".kernel"), w.at(node + ".bias").data, 1, 1, 1, 1, "valid",
                     "relu");
}
ref::Array conv1d_relu(const ref::Array& x, const WeightMap& w, const std::string& node) {
  return ref::conv1d(x, w.at(node + ".kernel"), w.at(node + ".bias").data, 1, 1, "valid", "relu");
}
ref::Array dense(const ref::Array& x, const WeightMap& w, const std::string& node, int64_t units,
                 const std::string& activation) {
  return {{x.shape[0], units},
          ref::dense(x.data, x.shape, w.at(node + ".kernel").data, w.at(node + ".bias").data, units,
                     activation)};
}

// Token ids (as doubles) -> embedding -> LSTM(32), its last state.
ref::Array text_branch(const ref::Array& ids, const WeightMap& w) {
  const ref::Array& table = w.at("text_embedding.embeddings");
  const int64_t dim = table.shape[1];
  std::vector<int> id_values(ids.data.begin(), ids.data.end());
  const Doubles embedded = ref::embedding(id_values, table.data.data(), dim);
  ref::RnnArgsT<double> a;
  a.batch = ids.shape[0];
  a.steps = ids.shape[1];
  a.features = dim;
  a.units = w.at("text_lstm.recurrent_kernel").shape[0];
  a.x = embedded.data();
  a.kernel = w.at("text_lstm.kernel").data.data();
  a.recurrent = w.at("text_lstm.recurrent_kernel").data.data();
  a.bias = w.at("text_lstm.bias").data.data();
  return {{a.batch, a.units}, ref::rnn(a)};
}

std::vector<Stage> image_stages() {
  std::vector<Stage> s;
  for (int i = 1; i <= 3; ++i) {
    const std::string conv = fmt::format("image_conv{}", i);
    s.push_back({{conv}, [conv](const ref::Array& x, const WeightMap& w) {
                   return ref::pool2d(conv2d_relu(x, w, conv), true, 2, 2, 2, 2, "valid");
                 }});
  }
  s.push_back({{"image_dense"}, [](const ref::Array& x, const WeightMap& w) {
                 const ref::Array flat{{x.shape[0], x.size() / x.shape[0]}, x.data};
                 return dense(flat, w, "image_dense", 256, "relu");
               }});
  return s;
}

std::vector<Stage> audio_stages() {
  std::vector<Stage> s;
  for (int i = 1; i <= 3; ++i) {
    const std::string conv = fmt::format("audio_conv{}", i);
    s.push_back({{conv}, [conv](const ref::Array& x, const WeightMap& w) {
                   return ref::pool1d(conv1d_relu(x, w, conv), true, 4, 4, "valid");
                 }});
  }
  s.push_back({{"audio_dense"}, [](const ref::Array& x, const WeightMap& w) {
                 return dense(ref::global_pool(x, false), w, "audio_dense", 256, "relu");
               }});
  return s;
}

double softmax_crossentropy_mean(const Doubles& logits, const Doubles& targets, int64_t batch) {
  const Doubles log_p = ref::softmax(logits, {batch, kClasses}, 1, /*log=*/true);
  double total = 0;
  for (size_t i = 0; i < log_p.size(); ++i) total -= targets[i] * log_p[i];
  return total / static_cast<double>(batch);
}

// The naive loss of the whole graph, with every branch's intermediate values kept for the base
// weights, so that the loss with one changed weight tensor recomputes only from its node on.
class NaiveReferenceStep {
 public:
  NaiveReferenceStep(const StepData& data, WeightMap weights)
      : w_(std::move(weights)), targets_(to_doubles(data.targets)) {
    const Tensor* inputs[] = {&data.text, &data.image, &data.audio};
    branches_.push_back({{{"text_embedding", "text_lstm"}, text_branch}});
    branches_.push_back(image_stages());
    branches_.push_back(audio_stages());
    for (size_t b = 0; b < branches_.size(); ++b) {
      const Tensor& in = *inputs[b];
      cache_.push_back({ref::Array{Dims(in.shape()), to_doubles(in)}});
      for (const Stage& s : branches_[b]) cache_[b].push_back(s.run(cache_[b].back(), w_));
    }
  }

  double loss() const { return head_loss(cache_[0].back(), cache_[1].back(), cache_[2].back()); }

  // The loss with the tensor `key` set to `values` (the others at their base values).
  double loss_changing(const std::string& key, const Doubles& values) {
    ref::Array& tensor = w_.at(key);
    const Doubles keep = tensor.data;
    tensor.data = values;
    const double l = recompute(key.substr(0, key.find('.')));
    tensor.data = keep;
    return l;
  }

 private:
  double head_loss(const ref::Array& text, const ref::Array& image, const ref::Array& audio) const {
    const Doubles fused =
        ref::concat({text.data, image.data, audio.data}, {text.shape, image.shape, audio.shape}, 1);
    const int64_t batch = text.shape[0];
    const ref::Array x{{batch, static_cast<int64_t>(fused.size()) / batch}, fused};
    return softmax_crossentropy_mean(dense(x, w_, "classifier", kClasses, "linear").data, targets_,
                                     batch);
  }

  double recompute(const std::string& node) const {
    std::vector<const ref::Array*> features;
    std::vector<ref::Array> fresh(branches_.size());
    for (size_t b = 0; b < branches_.size(); ++b) {
      features.push_back(&cache_[b].back());
      for (size_t s = 0; s < branches_[b].size(); ++s) {
        const auto& nodes = branches_[b][s].nodes;
        if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) continue;
        fresh[b] = cache_[b][s];
        for (size_t t = s; t < branches_[b].size(); ++t)
          fresh[b] = branches_[b][t].run(fresh[b], w_);
        features[b] = &fresh[b];
      }
    }
    return head_loss(*features[0], *features[1], *features[2]);
  }

  WeightMap w_;
  Doubles targets_;
  std::vector<std::vector<Stage>> branches_;
  std::vector<std::vector<ref::Array>> cache_;  // per branch: each stage's input, then output
};

// ---- the TrainingPlan step ----

struct PlanStep {
  double loss = 0;
  std::string arena_problem;
  std::map<std::string, std::vector<float>> gradients;  // every trainable weight
};

PlanStep run_plan_step(const CompiledGraph& graph, const WeightStore& initial, const StepData& data,
                       int threads) {
  ParameterStore params(graph, initial);
  TrainingPlanOptions options;
  options.threads = threads;
  options.fill_arena_with_nan = true;
  const std::vector<LossTap> taps{{graph.find_tensor("classifier"), /*logits=*/true}};
  TrainingPlan plan(graph, {data.text.shape(), data.image.shape(), data.audio.shape()}, taps,
                    params, options);
  PlanStep r;
  r.arena_problem = plan.arena_problem();
  REQUIRE(plan.prediction_type(0).shape == Dims{kBatch, kClasses});
  const std::map<std::string, Tensor> inputs = data.inputs();
  for (size_t i = 0; i < graph.def().inputs.size(); ++i) {
    const Tensor& t = inputs.at(graph.def().inputs[i].name);
    std::memcpy(plan.input(i), t.raw(), t.bytes());
  }
  plan.forward(0);
  r.loss = softmax_crossentropy_from_logits(plan.prediction(0), data.targets.data<float>(), kBatch,
                                            kClasses, 0.0, plan.prediction_gradient(0));
  plan.backward(0);
  for (const StoredParameter& e : params.entries()) {
    REQUIRE_MESSAGE(e.trainable, e.key);
    const float* g = e.gradient.data<float>();
    r.gradients[e.key].assign(g, g + e.gradient.size());
  }
  return r;
}

// Everything the test cases share, computed once: the graph, the initial weights, the data,
// the plan's step with 1 thread.
struct Fixture {
  std::string yaml = small_reference_yaml();
  std::shared_ptr<CompiledGraph> graph = compile_yaml(yaml, "multimodal_fusion_small.yaml");
  WeightStore initial = WeightStore::initialize(*graph, kInitSeed);
  StepData data;
  PlanStep step = run_plan_step(*graph, initial, data, 1);

  WeightMap weights() const {
    WeightMap w;
    for (const auto& [key, t] : initial.tensors())
      w[key] = ref::Array{Dims(t.shape()), to_doubles(t)};
    return w;
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

// 3 entries of a tensor (fixed seed); for the embedding table, entries of rows that the batch's
// tokens select (the others get an exact zero gradient, checked apart).
std::vector<size_t> sampled_entries(const std::string& key, size_t size, const StepData& data,
                                    uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> out;
  if (key == "text_embedding.embeddings") {
    const int64_t dim = static_cast<int64_t>(size) / kVocabulary;
    for (size_t position : {size_t{0}, size_t{2}, rng() % data.text.size()}) {  // 0, 2: repeated
      const int32_t id = data.text.data<int32_t>()[position];
      out.push_back(static_cast<size_t>(id * dim + static_cast<int64_t>(rng() % dim)));
    }
    return out;
  }
  for (int k = 0; k < 3; ++k) out.push_back(rng() % size);
  return out;
}

}  // namespace

TEST_CASE("reference graph step: the loss and every weight gradient match a naive double step") {
  const Fixture& f = fixture();
  CHECK(f.step.arena_problem == "");
  NaiveReferenceStep naive(f.data, f.weights());
  CHECK(f.step.loss == doctest::Approx(naive.loss()).epsilon(1e-4));
  CHECK(f.step.gradients.size() == f.initial.tensors().size());
  uint32_t seed = 100;
  for (const auto& [key, got] : f.step.gradients) {
    CAPTURE(key);
    const Doubles base = to_doubles(*f.initial.find(key));
    auto loss_of = [&](const Doubles& v) { return naive.loss_changing(key, v); };
    // Sampled entries against central differences, within kTolerance of the tensor's scale.
    const double scale = max_abs(got);
    CHECK(scale > 0);
    const std::vector<size_t> entries = sampled_entries(key, got.size(), f.data, ++seed);
    const Doubles want = numeric_gradient(loss_of, base, entries, kEps);
    for (size_t i : entries) {
      CAPTURE(i);
      CHECK(std::fabs(got[i] - want[i]) <= kTolerance * (scale + std::fabs(want[i])));
    }
    // One random +-1 direction over the whole tensor: d/dt L(w + t d) = <gradient, d>.
    std::mt19937 rng(++seed);
    Doubles up = base, down = base;
    double got_directional = 0, norm2 = 0;
    for (size_t i = 0; i < base.size(); ++i) {
      const double d = (rng() & 1) ? 1.0 : -1.0;
      up[i] += kDirectionEps * d;
      down[i] -= kDirectionEps * d;
      got_directional += d * got[i];
      norm2 += static_cast<double>(got[i]) * got[i];
    }
    const double want_directional = (loss_of(up) - loss_of(down)) / (2 * kDirectionEps);
    CHECK(std::fabs(got_directional - want_directional) <= kTolerance * std::sqrt(norm2) + 1e-9);
  }
  // Rows of the embedding table that no token selects get an exact zero gradient.
  const std::vector<float>& table = f.step.gradients.at("text_embedding.embeddings");
  const int64_t dim = static_cast<int64_t>(table.size()) / kVocabulary;
  std::vector<bool> used(kVocabulary, false);
  for (size_t i = 0; i < f.data.text.size(); ++i) used[f.data.text.data<int32_t>()[i]] = true;
  size_t nonzero_unused = 0;
  for (int r = 0; r < kVocabulary; ++r)
    for (int64_t j = 0; j < dim && !used[r]; ++j) nonzero_unused += table[r * dim + j] != 0.f;
  CHECK(nonzero_unused == 0);
}

TEST_CASE("reference graph step: 1 and 2 threads give the same loss and gradients") {
  const Fixture& f = fixture();
  const PlanStep two = run_plan_step(*f.graph, f.initial, f.data, 2);
  CHECK(two.arena_problem == "");
  CHECK(two.loss == doctest::Approx(f.step.loss).epsilon(1e-5));
  for (const auto& [key, one] : f.step.gradients) {
    CAPTURE(key);
    const std::vector<float>& g2 = two.gradients.at(key);
    REQUIRE(g2.size() == one.size());
    const double scale = max_abs(one);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < one.size(); ++i)
      if (std::fabs(one[i] - g2[i]) > 1e-4 * scale && differ++ == 0) first = i;
    CAPTURE(first);
    CHECK(differ == 0);
  }
}

TEST_CASE("reference graph step: one Adam step of Trainer::train_on_batch is Keras's update") {
  const Fixture& f = fixture();
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("fg_ref_step_{}", ::getpid());
  fs::create_directories(dir);
  const fs::path graph_path = dir / "multimodal_fusion_small.yaml";
  std::ofstream(graph_path) << f.yaml;
  TrainerOptions options;
  options.threads = 1;
  options.init_seed = kInitSeed;
  Trainer trainer(graph_path.string(), options);
  fs::remove_all(dir);
  const TrainingLogs logs =
      trainer.train_on_batch(f.data.inputs(), {{"classifier", f.data.targets}});
  REQUIRE(!logs.empty());
  CHECK(logs[0].first == "loss");
  CHECK(logs[0].second ==
        doctest::Approx(NaiveReferenceStep(f.data, f.weights()).loss()).epsilon(1e-4));

  // Keras Adam, first step: m = (1 - b1) g, v = (1 - b2) g^2,
  // w -= lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + epsilon).
  const double lr = 0.001, b1 = 0.9, b2 = 0.999, epsilon = 1e-7;
  const WeightStore after = trainer.weights();
  for (const auto& [key, g] : f.step.gradients) {
    CAPTURE(key);
    const Tensor* now = after.find(key);
    REQUIRE(now != nullptr);
    const Tensor& before = *f.initial.find(key);
    size_t differ = 0, first = 0, moved = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const double m = (1 - b1) * g[i], v = (1 - b2) * double(g[i]) * g[i];
      const double want = before.data<float>()[i] -
                          lr * std::sqrt(1 - b2) / (1 - b1) * m / (std::sqrt(v) + epsilon);
      const double got = now->data<float>()[i];
      moved += got != before.data<float>()[i];
      if (std::fabs(got - want) > 1e-6 + 1e-5 * std::fabs(want) && differ++ == 0) first = i;
    }
    CAPTURE(first);
    CHECK(differ == 0);
    CHECK(moved > 0);
  }
}
