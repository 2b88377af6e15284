// cross_attention against the naive reference: heads, key/value/output dims, odd and round sizes,
// batch 1 and > 1, with and without bias; masks from embeddings with mask_zero (key mask excludes
// keys, an all-masked sample gives zero weights, the query mask passes on); errors.
#include <fmt/format.h>

#include <thread>

#include "engine/model.hpp"
#include "engine/training/losses.hpp"
#include "engine/training/parameter_store.hpp"
#include "engine/training/training_plan.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/attention_dropout.hpp"
#include "tests/reference/dense_act.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/reference/tensor_attention_fusion.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

struct Config {
  int64_t batch, tq, tk, dq, dk, heads, key_dim;
  int64_t value_dim = 0, output_dim = 0;  // 0: default
  bool use_bias = true;
};

std::string attrs_of(const Config& c) {
  std::string a = fmt::format("num_heads: {}, key_dim: {}", c.heads, c.key_dim);
  if (c.value_dim) a += fmt::format(", value_dim: {}", c.value_dim);
  if (c.output_dim) a += fmt::format(", output_dim: {}", c.output_dim);
  if (!c.use_bias) a += ", use_bias: false";
  return a;
}

// Fills the reference weights and the weight map for node `node`.
void make_weights(const Config& c, const std::string& node, uint64_t seed, ref::AttentionArgs& a,
                  std::map<std::string, Tensor>& w) {
  a.heads = c.heads;
  a.key_dim = c.key_dim;
  a.value_dim = c.value_dim ? c.value_dim : c.key_dim;
  a.output_dim = c.output_dim ? c.output_dim : c.dq;
  const int64_t H = a.heads, kd = a.key_dim, vd = a.value_dim, O = a.output_dim;
  auto put = [&](const std::string& name, const Dims& shape, std::vector<double>& dst) {
    Tensor t = random_tensor(shape, seed++, -0.6f, 0.6f);
    w[node + "." + name] = t;
    dst = to_doubles(t);
  };
  put("query_kernel", {c.dq, H, kd}, a.wq);
  put("key_kernel", {c.dk, H, kd}, a.wk);
  put("value_kernel", {c.dk, H, vd}, a.wv);
  put("output_kernel", {H, vd, O}, a.wo);
  if (c.use_bias) {
    put("query_bias", {H, kd}, a.bq);
    put("key_bias", {H, kd}, a.bk);
    put("value_bias", {H, vd}, a.bv);
    put("output_bias", {O}, a.bo);
  }
}

void check_attention(const Config& c, uint64_t seed) {
  INFO(
      fmt::format("B {} Tq {} Tk {} dq {} dk {} {}", c.batch, c.tq, c.tk, c.dq, c.dk, attrs_of(c)));
  const std::string yaml = fmt::format(
      "name: t\ninputs:\n  q: {{shape: [{}, {}]}}\n  kv: {{shape: [{}, {}]}}\nnodes:\n"
      "  - {{name: att, op: cross_attention, inputs: [q, kv], {}}}\noutputs: [att]\n",
      c.tq, c.dq, c.tk, c.dk, attrs_of(c));
  ref::AttentionArgs a;
  a.batch = c.batch;
  a.tq = c.tq;
  a.tk = c.tk;
  a.dq = c.dq;
  a.dk = c.dk;
  Tensor q = random_tensor({c.batch, c.tq, c.dq}, seed, -2.f, 2.f);
  Tensor kv = random_tensor({c.batch, c.tk, c.dk}, seed + 1, -2.f, 2.f);
  a.query = to_doubles(q);
  a.kv = to_doubles(kv);
  std::map<std::string, Tensor> w;
  make_weights(c, "att", seed + 10, a, w);
  auto out = run_yaml(yaml, {{"q", q}, {"kv", kv}}, w);
  check_shape(out.at("att"), {c.batch, c.tq, a.output_dim});
  // float32 rounding of the projections and scores (magnitudes ~10 at the larger sizes) shows
  // as an absolute error on outputs near 0: the absolute part scales with the largest output.
  const std::vector<double> want = ref::cross_attention(a);
  double scale = 1;
  for (double v : want) scale = std::max(scale, std::abs(v));
  INFO("largest |output| " << scale);
  check_close(out.at("att"), want, 1e-5, 1e-5 * scale);
}

}  // namespace

TEST_CASE("cross_attention matches the reference for odd and round sizes") {
  uint64_t seed = 3000;
  for (int64_t batch : {1, 3}) {
    check_attention({batch, 7, 13, 5, 9, 1, 3}, seed += 20);
    check_attention({batch, 7, 13, 5, 9, 2, 8}, seed += 20);
    check_attention({batch, 13, 7, 16, 16, 4, 4}, seed += 20);
    check_attention({batch, 1, 1, 3, 2, 3, 5}, seed += 20);
    check_attention({batch, 16, 32, 32, 64, 4, 16}, seed += 20);
    check_attention({batch, 127, 13, 7, 5, 2, 3}, seed += 20);
  }
}

TEST_CASE("cross_attention with value_dim, output_dim and without bias matches the reference") {
  uint64_t seed = 4000;
  for (int64_t batch : {1, 2}) {
    Config c{batch, 7, 13, 5, 9, 2, 3};
    c.value_dim = 6;
    check_attention(c, seed += 20);
    c.output_dim = 11;
    check_attention(c, seed += 20);
    c.use_bias = false;
    check_attention(c, seed += 20);
    Config d{batch, 9, 4, 8, 8, 3, 4};
    d.output_dim = 1;
    d.use_bias = false;
    check_attention(d, seed += 20);
  }
}

TEST_CASE("cross_attention weight specs follow Keras MultiHeadAttention") {
  auto def = load_graph_string(
      "name: t\ninputs:\n  q: {shape: [null, 6]}\n  kv: {shape: [null, 10]}\nnodes:\n"
      "  - {name: att, op: cross_attention, inputs: [q, kv], num_heads: 2, key_dim: 4, "
      "value_dim: 3}\noutputs: [att]\n",
      "t.yaml");
  auto g = compile_graph(def, builtin_ops());
  auto all = g.all_weights();
  std::vector<std::pair<std::string, Dims>> want{
      {"att.query_kernel", {6, 2, 4}},  {"att.query_bias", {2, 4}},
      {"att.key_kernel", {10, 2, 4}},   {"att.key_bias", {2, 4}},
      {"att.value_kernel", {10, 2, 3}}, {"att.value_bias", {2, 3}},
      {"att.output_kernel", {2, 3, 6}}, {"att.output_bias", {6}}};
  REQUIRE(all.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(all[i].first == want[i].first);
    CHECK(all[i].second.shape == want[i].second);
  }
  // Keras glorot fans of a 3-d kernel: fan_in = shape[1] * shape[0], fan_out = shape[2] * shape[0]
  CHECK(all[0].second.fan_in == 12);
  CHECK(all[0].second.fan_out == 24);
  CHECK(all[6].second.fan_in == 6);
  CHECK(all[6].second.fan_out == 12);
  CHECK(all[1].second.init == Init::zeros);
  // output shape keeps the query steps
  CHECK(g.tensors()[g.output_tensors()[0]].type.shape == Dims{kDynamic, kDynamic, 6});
}

TEST_CASE("cross_attention masks from embeddings with mask_zero") {
  // query ids and key ids; sample 1 has every key masked, sample 0 some, sample 2 none.
  const int64_t B = 3, tq = 5, tk = 6, dq = 4, dk = 7;
  const std::string yaml_base =
      "name: t\ninputs:\n  qi: {shape: [5], dtype: int32}\n  ki: {shape: [6], dtype: int32}\n"
      "nodes:\n"
      "  - {name: qe, op: embedding, input: qi, input_dim: 10, output_dim: 4, mask_zero: true}\n"
      "  - {name: ke, op: embedding, input: ki, input_dim: 10, output_dim: 7, mask_zero: true}\n"
      "  - {name: att, op: cross_attention, inputs: [qe, ke], num_heads: 2, key_dim: 3}\n";
  Tensor qi = make_int_tensor({B, tq}, {3, 1, 0, 2, 0,  //
                                        5, 6, 7, 0, 0,  //
                                        1, 2, 3, 4, 5});
  Tensor ki = make_int_tensor({B, tk}, {4, 0, 2, 0, 0, 9,  //
                                        0, 0, 0, 0, 0, 0,  //
                                        1, 2, 3, 4, 5, 6});
  Tensor qtable = random_tensor({10, dq}, 71), ktable = random_tensor({10, dk}, 72);
  std::vector<int> qids(qi.data<int32_t>(), qi.data<int32_t>() + qi.size());
  std::vector<int> kids(ki.data<int32_t>(), ki.data<int32_t>() + ki.size());
  ref::AttentionArgs a;
  a.batch = B;
  a.tq = tq;
  a.tk = tk;
  a.dq = dq;
  a.dk = dk;
  a.query = ref::embedding(qids, qtable.data<float>(), dq);
  a.kv = ref::embedding(kids, ktable.data<float>(), dk);
  for (int id : kids) a.key_mask.push_back(id != 0 ? 1 : 0);
  std::map<std::string, Tensor> w{{"qe.embeddings", qtable}, {"ke.embeddings", ktable}};
  Config c{B, tq, tk, dq, dk, 2, 3};
  make_weights(c, "att", 80, a, w);
  const std::vector<double> want = ref::cross_attention(a);

  SUBCASE("the key mask excludes keys and an all-masked sample gets zero weights") {
    auto out = run_yaml(yaml_base + "outputs: [att]\n", {{"qi", qi}, {"ki", ki}}, w);
    check_close(out.at("att"), want, 1e-5, 1e-5);
    // sample 1: zero attention weights, so every query position is exactly the output bias
    const auto got = to_doubles(out.at("att"));
    const float* bo = w.at("att.output_bias").data<float>();
    for (int64_t i = 0; i < tq; ++i)
      for (int64_t o = 0; o < dq; ++o) CHECK(got[(1 * tq + i) * dq + o] == bo[o]);
    // the reference without the mask differs (the mask matters in this test)
    ref::AttentionArgs unmasked = a;
    unmasked.key_mask.clear();
    const auto other = ref::cross_attention(unmasked);
    double diff = 0;
    for (size_t i = 0; i < other.size(); ++i) diff = std::max(diff, std::abs(other[i] - want[i]));
    CHECK(diff > 1e-3);
  }

  SUBCASE("the query mask passes on to the output") {
    auto def = load_graph_string(yaml_base + "outputs: [att]\n", "t.yaml");
    auto g = compile_graph(def, builtin_ops());
    CHECK(g.tensors()[g.find_tensor("att")].type.masked);
    // a masked average over the steps only counts the query steps with a nonzero id
    auto out = run_yaml(yaml_base +
                            "  - {name: gap, op: global_average_pooling1d, input: att}\n"
                            "outputs: [gap]\n",
                        {{"qi", qi}, {"ki", ki}}, w);
    std::vector<double> pooled(B * dq, 0.0);
    for (int64_t b = 0; b < B; ++b) {
      int count = 0;
      for (int64_t i = 0; i < tq; ++i) {
        if (qids[b * tq + i] == 0) continue;
        ++count;
        for (int64_t o = 0; o < dq; ++o) pooled[b * dq + o] += want[(b * tq + i) * dq + o];
      }
      for (int64_t o = 0; o < dq; ++o) pooled[b * dq + o] /= count;
    }
    check_close(out.at("gap"), pooled, 1e-5, 1e-5);
  }

  SUBCASE("a query without a mask gives an unmasked output even when the keys are masked") {
    const std::string yaml =
        "name: t\ninputs:\n  q: {shape: [5, 4]}\n  ki: {shape: [6], dtype: int32}\nnodes:\n"
        "  - {name: ke, op: embedding, input: ki, input_dim: 10, output_dim: 7, mask_zero: true}\n"
        "  - {name: att, op: cross_attention, inputs: [q, ke], num_heads: 2, key_dim: 3}\n"
        "outputs: [att]\n";
    auto g = compile_graph(load_graph_string(yaml, "t.yaml"), builtin_ops());
    CHECK_FALSE(g.tensors()[g.find_tensor("att")].type.masked);
    Tensor q = random_tensor({B, tq, dq}, 99);
    ref::AttentionArgs b = a;
    b.query = to_doubles(q);
    std::map<std::string, Tensor> w2 = w;
    w2.erase("qe.embeddings");
    auto out = run_yaml(yaml, {{"q", q}, {"ki", ki}}, w2);
    check_close(out.at("att"), ref::cross_attention(b), 1e-5, 1e-5);
  }
}

TEST_CASE("cross_attention runs on oneDNN kernels, not reference ones") {
  const std::string yaml =
      "name: t\ninputs:\n  q: {shape: [7, 16]}\n  kv: {shape: [13, 32]}\nnodes:\n"
      "  - {name: att, op: cross_attention, inputs: [q, kv], num_heads: 4, key_dim: 8}\n"
      "outputs: [att]\n";
  auto g = std::make_shared<CompiledGraph>(
      compile_graph(load_graph_string(yaml, "t.yaml"), builtin_ops()));
  Model model(g, WeightStore::initialize(*g, 1));
  std::vector<StepTiming> profile;
  RunOptions o;
  o.profile = &profile;
  auto out =
      model.run({{"q", random_tensor({2, 7, 16}, 1)}, {"kv", random_tensor({2, 13, 32}, 2)}}, o);
  bool found = false;
  for (const auto& s : profile)
    if (s.name == "att") {
      found = true;
      CAPTURE(s.impl);
      CHECK(s.impl.find("ref") == std::string::npos);
    }
  CHECK(found);
}

TEST_CASE("cross_attention attribute and input errors") {
  auto yaml = [](const std::string& q, const std::string& kv, const std::string& attrs) {
    return fmt::format(
        "name: t\ninputs:\n  q: {{shape: {}}}\n  kv: {{shape: {}}}\nnodes:\n"
        "  - {{name: att, op: cross_attention, inputs: [q, kv], {}}}\noutputs: [att]\n",
        q, kv, attrs);
  };
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "key_dim: 4")).find("num_heads") !=
        std::string::npos);
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 2")).find("key_dim") !=
        std::string::npos);
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 0, key_dim: 4")) != "");
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 2, key_dim: -4")) != "");
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 2, key_dim: 4, value_dim: 0")) != "");
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 2, key_dim: 4, output_dim: 0")) != "");
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 2, key_dim: 4, dropout: 1.5"))
            .find("dropout must be in [0, 1)") != std::string::npos);
  CHECK(compile_error(yaml("[5, 4]", "[6, 3]", "num_heads: 2, key_dim: 4, num_head: 3"))
            .find("num_heads") != std::string::npos);
  std::string e = compile_error(yaml("[4]", "[6, 3]", "num_heads: 2, key_dim: 4"));
  CHECK(e.find("rank-3 query input [batch, steps, features], but 'q' has shape (None, 4)") !=
        std::string::npos);
  CHECK(e.find("return_sequences") != std::string::npos);
  e = compile_error(yaml("[5, 4]", "[6, 3, 2]", "num_heads: 2, key_dim: 4"));
  CHECK(e.find("rank-3 key/value input") != std::string::npos);
  e = compile_error(yaml("[5, null]", "[6, 3]", "num_heads: 2, key_dim: 4"));
  CHECK(e.find("feature size of 'q' known") != std::string::npos);
  CHECK(compile_error(yaml("[null, 4]", "[null, 3]", "num_heads: 2, key_dim: 4")) == "");
  e = compile_error(
      "name: t\ninputs:\n  q: {shape: [5, 4]}\nnodes:\n"
      "  - {name: att, op: cross_attention, inputs: [q], num_heads: 2, key_dim: 4}\n"
      "outputs: [att]\n");
  CHECK(e.find("exactly 2 inputs [query, key_value], got 1") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  q: {shape: [5, 4]}\n  kv: {shape: [6, 3], dtype: int32}\nnodes:\n"
      "  - {name: att, op: cross_attention, inputs: [q, kv], num_heads: 2, key_dim: 4}\n"
      "outputs: [att]\n");
  CHECK(e.find("float32 key/value input") != std::string::npos);
}

TEST_CASE("fusion ops give the same results from concurrent runs of one model") {
  // cross_attention (with a key mask) and both fusion ops in one graph; two threads run it at
  // once on different inputs and must match the single-threaded results exactly.
  const std::string yaml =
      "name: t\ninputs:\n  q: {shape: [7, 16]}\n  ki: {shape: [9], dtype: int32}\n"
      "  a: {shape: [5]}\n  b: {shape: [6]}\nnodes:\n"
      "  - {name: ke, op: embedding, input: ki, input_dim: 20, output_dim: 8, mask_zero: true}\n"
      "  - {name: att, op: cross_attention, inputs: [q, ke], num_heads: 2, key_dim: 4}\n"
      "  - {name: tf, op: tensor_fusion, inputs: [a, b]}\n"
      "  - {name: lr, op: low_rank_fusion, inputs: [a, b], rank: 3, units: 4}\n"
      "outputs: [att, tf, lr]\n";
  auto g = std::make_shared<CompiledGraph>(
      compile_graph(load_graph_string(yaml, "t.yaml"), builtin_ops()));
  Model model(g, WeightStore::initialize(*g, 3));
  auto feeds = [](uint64_t seed) {
    Tensor ids = random_ints({3, 9}, seed, 0, 19);
    ids.mutable_data<int32_t>()[9] = 0;
    return std::map<std::string, Tensor>{{"q", random_tensor({3, 7, 16}, seed + 1)},
                                         {"ki", ids},
                                         {"a", random_tensor({3, 5}, seed + 2)},
                                         {"b", random_tensor({3, 6}, seed + 3)}};
  };
  const auto in0 = feeds(10), in1 = feeds(20);
  const auto want0 = model.run(in0), want1 = model.run(in1);
  std::vector<std::map<std::string, Tensor>> got0(20), got1(20);
  std::thread t0([&] {
    for (auto& g0 : got0) g0 = model.run(in0);
  });
  std::thread t1([&] {
    for (auto& g1 : got1) g1 = model.run(in1);
  });
  t0.join();
  t1.join();
  for (const std::string name : {"att", "tf", "lr"}) {
    CAPTURE(name);
    for (size_t i = 0; i < got0.size(); ++i) {
      check_close(got0[i].at(name), to_doubles(want0.at(name)), 0, 0);
      check_close(got1[i].at(name), to_doubles(want1.at(name)), 0, 0);
    }
  }
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

std::string attention_yaml(const Config& c, const std::string& extra = "") {
  return fmt::format(
      "name: t\ninputs:\n  q: {{shape: [{}, {}]}}\n  kv: {{shape: [{}, {}]}}\nnodes:\n"
      "  - {{name: att, op: cross_attention, inputs: [q, kv], {}{}}}\noutputs: [att]\n",
      c.tq, c.dq, c.tk, c.dk, attrs_of(c), extra);
}

// A training case for `c` (weights under their param names) and the reference arguments.
TrainingNodeCase attention_case(const Config& c, uint64_t seed, ref::AttentionArgs& a) {
  TrainingNodeCase t;
  t.yaml = attention_yaml(c);
  a.batch = c.batch;
  a.tq = c.tq;
  a.tk = c.tk;
  a.dq = c.dq;
  a.dk = c.dk;
  t.inputs = {random_tensor({c.batch, c.tq, c.dq}, seed),
              random_tensor({c.batch, c.tk, c.dk}, seed + 1)};
  std::map<std::string, Tensor> w;
  make_weights(c, "att", seed + 10, a, w);
  for (auto& [name, tensor] : w) t.weights[name.substr(4)] = tensor;  // drop "att."
  return t;
}

// The reference with the inputs and weights of a finite-difference probe (weights() order:
// query, key, value, output; kernel then bias).
ref::AttentionArgs probe_args(ref::AttentionArgs a, bool bias,
                              const std::vector<std::vector<double>>& x,
                              const std::vector<std::vector<double>>& w) {
  a.query = x[0];
  a.kv = x[1];
  std::vector<double>* kernels[4] = {&a.wq, &a.wk, &a.wv, &a.wo};
  std::vector<double>* biases[4] = {&a.bq, &a.bk, &a.bv, &a.bo};
  size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    *kernels[i] = w[at++];
    if (bias) *biases[i] = w[at++];
  }
  return a;
}

TrainingNodeResult check_attention_gradient(const Config& c, uint64_t seed,
                                            const std::vector<uint8_t>& key_mask = {},
                                            bool frozen = false, std::vector<bool> needs = {}) {
  INFO(
      fmt::format("B {} Tq {} Tk {} dq {} dk {} {}", c.batch, c.tq, c.tk, c.dq, c.dk, attrs_of(c)));
  ref::AttentionArgs a;
  TrainingNodeCase t = attention_case(c, seed, a);
  a.key_mask = key_mask;
  if (!key_mask.empty()) t.masks = {{}, key_mask};
  t.frozen = frozen;
  t.needs_input_gradient = std::move(needs);
  GradientTolerance tol;
  tol.max_checked = 120;
  return check_gradients(
      t,
      [&](const auto& x, const auto& w) {
        return std::vector<std::vector<double>>{
            ref::cross_attention(probe_args(a, c.use_bias, x, w))};
      },
      tol);
}

}  // namespace

TEST_CASE("cross_attention gradient: heads, key/value/output dims, odd and round sizes") {
  uint64_t seed = 6000;
  for (int64_t batch : {1, 3}) {
    check_attention_gradient({batch, 7, 13, 5, 9, 1, 3}, seed += 20);
    check_attention_gradient({batch, 13, 7, 8, 16, 2, 4}, seed += 20);
    check_attention_gradient({batch, 1, 1, 3, 2, 3, 5}, seed += 20);
  }
  check_attention_gradient({2, 7, 5, 6, 4, 2, 3, 5, 7}, seed += 20);         // value, output dims
  check_attention_gradient({2, 5, 7, 6, 4, 2, 3, 0, 0, false}, seed += 20);  // no biases
  check_attention_gradient({2, 8, 16, 16, 8, 4, 4}, seed += 20);
}

TEST_CASE("cross_attention gradient with a key mask: masked keys get no gradient") {
  // sample 0: some keys masked; sample 1: every key masked; sample 2: none
  const Config c{3, 5, 6, 4, 7, 2, 3};
  const std::vector<uint8_t> mask{1, 0, 1, 0, 0, 1,  //
                                  0, 0, 0, 0, 0, 0,  //
                                  1, 1, 1, 1, 1, 1};
  auto r = check_attention_gradient(c, 6500, mask);
  // masked key/value rows get no gradient (finite differences agree: the check above)
  const float* dkv = r.diff_inputs[1].data<float>();
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t j = 0; j < 6; ++j)
      if (!mask[b * 6 + j])
        for (int64_t e = 0; e < 7; ++e) CHECK(dkv[(b * 6 + j) * 7 + e] == 0.0f);
  // an all-masked sample: its queries get no gradient either (the output is the bias there)
  const float* dq = r.diff_inputs[0].data<float>();
  for (int64_t i = 0; i < 5 * 4; ++i) CHECK(dq[1 * 5 * 4 + i] == 0.0f);
}

TEST_CASE("cross_attention gradient: only the query or only the key/value needs a gradient") {
  // the harness checks that the other input's gradient keeps its zeros
  check_attention_gradient({2, 5, 7, 6, 4, 2, 3}, 6550, {}, false, {true, false});
  check_attention_gradient({2, 5, 7, 6, 4, 2, 3}, 6560, {}, false, {false, true});
}

TEST_CASE("cross_attention gradient: a frozen node writes no weight gradient") {
  auto r = check_attention_gradient({2, 5, 7, 6, 4, 2, 3}, 6600, {}, /*frozen=*/true);
  for (const Tensor& g : r.diff_weights)
    for (size_t i = 0; i < g.size(); ++i) REQUIRE(g.data<float>()[i] == 0.0f);
}

TEST_CASE("cross_attention gradient with attention dropout in training") {
  const Config c{2, 7, 13, 6, 5, 2, 3};
  ref::AttentionArgs a;
  TrainingNodeCase t = attention_case(c, 6700, a);
  t.yaml = attention_yaml(c, ", dropout: 0.3");
  t.seed = 42;
  t.step = 5;
  // The draw: saved tensor 5 (weights after dropout) against 3 (softmax weights).
  auto draw = [&](const TrainingNodeCase& k) {
    auto r = run_training_node(k, {});
    const size_t n = static_cast<size_t>(2 * 2 * 7 * 13);
    std::vector<double> keep(n);
    for (size_t i = 0; i < n; ++i) {
      const float w = r.saved[3].data<float>()[i], d = r.saved[5].data<float>()[i];
      REQUIRE(w > 0.f);
      keep[i] = d == 0.f ? 0.0 : 1.0 / 0.7;
      if (d != 0.f) CHECK(d == doctest::Approx(w / 0.7).epsilon(1e-6));
    }
    return keep;
  };
  const std::vector<double> keep = draw(t);
  size_t dropped = 0;
  for (double k : keep) dropped += k == 0.0;
  CHECK(dropped > keep.size() / 10);  // about 30% of 364
  CHECK(dropped < keep.size() / 2);
  TrainingNodeCase later = t;
  later.step = 6;
  CHECK(draw(later) != keep);  // a new draw each step
  CHECK(draw(t) == keep);      // the same one for the same seed and step
  GradientTolerance tol;
  tol.max_checked = 120;
  check_gradients(
      t,
      [&](const auto& x, const auto& w) {
        return std::vector<std::vector<double>>{
            ref::cross_attention_dropped(probe_args(a, true, x, w), keep)};
      },
      tol);
}

// ---- training inside a TrainingPlan, after other nodes were compiled ----
// The training kernels run long after compile_training returned: a stage that reads its
// builder's members (a dangling `this`) passes the one-node checks above while that stack
// frame happens to survive, and reads garbage (batch 0: no softmax; a huge batch: writes out
// of bounds) in a plan. Here the plan runs q, kv -> cross_attention -> mean over the queries
// -> dense(10) -> softmax crossentropy, and the attention's weight gradients are checked
// against finite differences of a naive double-precision loss.
namespace {

void check_attention_in_plan(const Config& c) {
  INFO(
      fmt::format("B {} Tq {} Tk {} dq {} dk {} {}", c.batch, c.tq, c.tk, c.dq, c.dk, attrs_of(c)));
  const std::string graph_yaml = fmt::format(
      "name: t\ninputs:\n  q: {{shape: [{}, {}]}}\n  kv: {{shape: [{}, {}]}}\nnodes:\n"
      "  - {{name: att, op: cross_attention, inputs: [q, kv], {}}}\n"
      "  - {{name: pool, op: global_average_pooling1d, input: att}}\n"
      "  - {{name: label, op: dense, input: pool, units: 10, activation: softmax}}\n"
      "outputs: [label]\n",
      c.tq, c.dq, c.tk, c.dk, attrs_of(c));
  auto graph = compile_yaml(graph_yaml);
  ParameterStore params(*graph, WeightStore::initialize(*graph, 3));
  TrainingPlanOptions options;
  options.fill_arena_with_nan = true;
  TrainingPlan plan(*graph, {{c.batch, c.tq, c.dq}, {c.batch, c.tk, c.dk}},
                    {{graph->find_tensor("label"), true}}, params, options);
  const Tensor q = random_tensor({c.batch, c.tq, c.dq}, 71),
               kv = random_tensor({c.batch, c.tk, c.dk}, 72);
  std::vector<int32_t> ids(static_cast<size_t>(c.batch));
  for (int64_t b = 0; b < c.batch; ++b) ids[b] = static_cast<int32_t>((b * 7) % 10);
  std::memcpy(plan.input(0), q.data<float>(), q.bytes());
  std::memcpy(plan.input(1), kv.data<float>(), kv.bytes());
  plan.forward(0);
  sparse_softmax_crossentropy_from_logits(plan.prediction(0), ids.data(), c.batch, 10,
                                          plan.prediction_gradient(0));
  plan.backward(0);

  ref::AttentionArgs a;
  a.batch = c.batch, a.tq = c.tq, a.tk = c.tk, a.dq = c.dq, a.dk = c.dk;
  a.heads = c.heads, a.key_dim = c.key_dim;
  a.value_dim = c.value_dim ? c.value_dim : c.key_dim;
  a.output_dim = c.output_dim ? c.output_dim : c.dq;
  a.query = to_doubles(q);
  a.kv = to_doubles(kv);
  std::map<std::string, std::vector<double>*> slot{
      {"att.query_kernel", &a.wq},  {"att.query_bias", &a.bq},   {"att.key_kernel", &a.wk},
      {"att.key_bias", &a.bk},      {"att.value_kernel", &a.wv}, {"att.value_bias", &a.bv},
      {"att.output_kernel", &a.wo}, {"att.output_bias", &a.bo}};
  for (auto it = slot.begin(); it != slot.end();)  // no biases with use_bias: false
    it = params.find(it->first) ? std::next(it) : slot.erase(it);
  for (auto& [key, dst] : slot) *dst = to_doubles(params.find(key)->value);
  const std::vector<double> wd = to_doubles(params.find("label.kernel")->value);
  const std::vector<double> bd = to_doubles(params.find("label.bias")->value);
  auto naive_loss = [&](const ref::AttentionArgs& args) {
    const std::vector<double> y = ref::cross_attention(args);
    const int64_t O = args.output_dim;
    std::vector<double> pooled(static_cast<size_t>(c.batch * O), 0.0);
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t t = 0; t < c.tq; ++t)
        for (int64_t o = 0; o < O; ++o) pooled[b * O + o] += y[(b * c.tq + t) * O + o] / c.tq;
    const std::vector<double> logits = ref::dense(pooled, {c.batch, O}, wd, bd, 10, "linear");
    double total = 0;
    for (int64_t b = 0; b < c.batch; ++b) {
      double top = -1e300, sum = 0;
      for (int k = 0; k < 10; ++k) top = std::max(top, logits[b * 10 + k]);
      for (int k = 0; k < 10; ++k) sum += std::exp(logits[b * 10 + k] - top);
      total -= logits[b * 10 + ids[b]] - top - std::log(sum);
    }
    return total / static_cast<double>(c.batch);
  };
  for (auto& [key, dst] : slot) {
    CAPTURE(key);
    const StoredParameter& p = *params.find(key);
    const std::vector<size_t> idx = detail::sample_indices(p.value.size(), 12, 5);
    const std::vector<double> want = numeric_gradient(
        [&, dst = dst](const std::vector<double>& v) {
          *dst = v;  // the probe, in `a` (restored below)
          return naive_loss(a);
        },
        *dst, idx);
    *dst = to_doubles(p.value);
    double scale = 1e-6;
    for (size_t i : idx) scale = std::max(scale, std::abs(want[i]));
    for (size_t i : idx)
      CHECK(p.gradient.data<float>()[i] == doctest::Approx(want[i]).epsilon(1e-3).scale(scale));
  }
}

}  // namespace

TEST_CASE(
    "cross_attention gradient inside a training plan: the fashion example's sizes, odd ones") {
  // graphs/fashion_cross_attention.yaml: queries [B, 16, 32], keys [B, 21, 64], 2 heads,
  // key_dim 16, output_dim 64 (key length != query length, output_dim != query dim)
  check_attention_in_plan({4, 16, 21, 32, 64, 2, 16, 0, 64});
  check_attention_in_plan({3, 13, 27, 7, 13, 3, 5, 0, 11});
  check_attention_in_plan({5, 7, 5, 6, 9, 2, 3, 4, 0, false});
}
