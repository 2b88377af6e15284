// embedding against a plain table lookup, out-of-range ids and attribute errors.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/layers/gradient_check.hpp"
#include "tests/reference/recurrent.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string graph(const std::string& shape, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  ids: {{shape: {}, dtype: int32}}\nnodes:\n"
      "  - {{name: emb, op: embedding, input: ids, {}}}\noutputs: [emb]\n",
      shape, attrs);
}

std::vector<int> ids_of(const Tensor& t) {
  return std::vector<int>(t.data<int32_t>(), t.data<int32_t>() + t.size());
}

}  // namespace

TEST_CASE("embedding looks rows up for batch 1 and 3 and odd sizes") {
  for (int64_t batch : {1, 3})
    for (int64_t out_dim : {1, 13, 64}) {
      INFO("batch " << batch << " output_dim " << out_dim);
      Tensor table = random_tensor({50, out_dim}, 11 + out_dim);
      Tensor ids = random_ints({batch, 7}, 5 + batch, 0, 49);
      auto out = run_yaml(graph("[7]", fmt::format("input_dim: 50, output_dim: {}", out_dim)),
                          {{"ids", ids}}, {{"emb.embeddings", table}});
      check_shape(out.at("emb"), {batch, 7, out_dim});
      check_close(out.at("emb"), ref::embedding(ids_of(ids), table.data<float>(), out_dim), 0, 0);
    }
}

TEST_CASE("embedding of rank-3 ids appends the output axis") {
  Tensor table = random_tensor({10, 5}, 3);
  Tensor ids = random_ints({2, 3, 4}, 4, 0, 9);
  auto out = run_yaml(graph("[3, 4]", "input_dim: 10, output_dim: 5"), {{"ids", ids}},
                      {{"emb.embeddings", table}});
  check_shape(out.at("emb"), {2, 3, 4, 5});
  check_close(out.at("emb"), ref::embedding(ids_of(ids), table.data<float>(), 5), 0, 0);
}

TEST_CASE("embedding with mask_zero keeps the row-0 vectors and masks a consumer") {
  // The values at id 0 are still table[0] (Keras does not zero them); the mask reaches the lstm,
  // whose output for an all-zero row must then be the initial state (zeros).
  Tensor table = random_tensor({6, 3}, 8);
  Tensor ids = make_int_tensor({2, 4}, {1, 2, 0, 0, 0, 0, 0, 0});
  auto out = run_yaml(graph("[4]", "input_dim: 6, output_dim: 3, mask_zero: true"), {{"ids", ids}},
                      {{"emb.embeddings", table}});
  check_close(out.at("emb"), ref::embedding(ids_of(ids), table.data<float>(), 3), 0, 0);
  const std::string yaml =
      "name: t\ninputs:\n  ids: {shape: [4], dtype: int32}\nnodes:\n"
      "  - {name: emb, op: embedding, input: ids, input_dim: 6, output_dim: 3, mask_zero: true}\n"
      "  - {name: r, op: lstm, input: emb, units: 2}\noutputs: [r]\n";
  auto out2 = run_yaml(yaml, {{"ids", ids}},
                       {{"emb.embeddings", table},
                        {"r.kernel", random_tensor({3, 8}, 1)},
                        {"r.recurrent_kernel", random_tensor({2, 8}, 2)},
                        {"r.bias", random_tensor({8}, 3)}});
  auto r = to_doubles(out2.at("r"));
  CHECK(r[2] == 0.0);
  CHECK(r[3] == 0.0);
  CHECK(r[0] != 0.0);
}

TEST_CASE("embedding index out of range names the node, row, position and value") {
  Tensor table = random_tensor({10, 4}, 3);
  Tensor ids = make_int_tensor({2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 10, 9});
  std::string message;
  try {
    run_yaml(graph("[5]", "input_dim: 10, output_dim: 4"), {{"ids", ids}},
             {{"emb.embeddings", table}});
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("emb") != std::string::npos);
  CHECK(message.find("batch row 1") != std::string::npos);
  CHECK(message.find("position 3") != std::string::npos);
  CHECK(message.find("index 10") != std::string::npos);
  CHECK(message.find("input_dim 10") != std::string::npos);

  Tensor negative = make_int_tensor({1, 5}, {0, -3, 1, 1, 1});
  message.clear();
  try {
    run_yaml(graph("[5]", "input_dim: 10, output_dim: 4"), {{"ids", negative}},
             {{"emb.embeddings", table}});
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("batch row 0, position 1") != std::string::npos);
  CHECK(message.find("index -3") != std::string::npos);
}

TEST_CASE("embedding index out of range in rank-3 ids gives the full position") {
  Tensor table = random_tensor({10, 4}, 3);
  Tensor ids = make_int_tensor({1, 2, 3}, {1, 2, 3, 4, 11, 9});
  std::string message;
  try {
    run_yaml(graph("[2, 3]", "input_dim: 10, output_dim: 4"), {{"ids", ids}},
             {{"emb.embeddings", table}});
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("index 11 at batch row 0, position (1, 1)") != std::string::npos);
}

TEST_CASE("embedding weights and attribute errors") {
  auto def = load_graph_string(graph("[7]", "input_dim: 50, output_dim: 8"), "t.yaml");
  auto g = compile_graph(def, builtin_ops());
  auto w = g.all_weights();
  REQUIRE(w.size() == 1);
  CHECK(w[0].first == "emb.embeddings");
  CHECK(format_shape(w[0].second.shape) == "(50, 8)");
  CHECK(w[0].second.init == Init::uniform_embedding);

  CHECK(compile_error(graph("[7]", "output_dim: 8")).find("input_dim") != std::string::npos);
  CHECK(compile_error(graph("[7]", "input_dim: 50")).find("output_dim") != std::string::npos);
  CHECK(compile_error(graph("[7]", "input_dim: 0, output_dim: 8")).find("positive") !=
        std::string::npos);
  CHECK(compile_error(graph("[7]", "input_dim: 5, output_dim: 8, mask_zeros: true"))
            .find("mask_zero") != std::string::npos);
  CHECK(compile_error(graph("[3, 4]", "input_dim: 5, output_dim: 8, mask_zero: true"))
            .find("mask_zero") != std::string::npos);
  CHECK(compile_error(graph("[7]", "input_dim: 5, output_dim: 8, input_length: 7")) == "");
  CHECK(compile_error(graph("[7]", "input_dim: 5, output_dim: 8, input_length: 6"))
            .find("input_length is 6") != std::string::npos);
  std::string msg = compile_error(
      "name: t\ninputs:\n  x: {shape: [7]}\nnodes:\n"
      "  - {name: emb, op: embedding, input: x, input_dim: 5, output_dim: 8}\noutputs: [emb]\n");
  CHECK(msg.find("int32") != std::string::npos);
  CHECK(msg.find("hint") != std::string::npos);
}

// ---- training: the gradient against finite differences of the naive reference ----

namespace {

// The naive forward on the doubles check_gradients hands over (ids as their values).
std::vector<std::vector<double>> naive_embedding(const std::vector<double>& ids,
                                                 const std::vector<double>& table,
                                                 int64_t output_dim) {
  const std::vector<int> id(ids.begin(), ids.end());
  return {ref::embedding(id, table.data(), output_dim)};
}

}  // namespace

TEST_CASE("embedding gradient: a dense scatter-add over the whole table, repeated ids summed") {
  for (int64_t batch : {1, 3})
    for (int64_t out_dim : {1, 13, 40}) {
      for (const std::string shape : {"[7]", "[2, 5]"}) {
        CAPTURE(batch);
        CAPTURE(out_dim);
        CAPTURE(shape);
        Dims ids_shape{batch, 7};
        if (shape == "[2, 5]") ids_shape = {batch, 2, 5};
        TrainingNodeCase c;
        c.yaml = graph(shape, fmt::format("input_dim: 11, output_dim: {}", out_dim));
        c.inputs = {random_ints(ids_shape, 40 + batch, 0, 5)};  // rows 6..10 never looked up
        c.weights["embeddings"] = random_tensor({11, out_dim}, 41);
        check_gradients(
            c, [&](const auto& x, const auto& w) { return naive_embedding(x[0], w[0], out_dim); });
      }
    }
}

TEST_CASE("embedding gradient: rows never looked up get zeros, repeats the sum of their rows") {
  TrainingNodeCase c;
  c.yaml = graph("[4]", "input_dim: 5, output_dim: 2, mask_zero: true");
  c.inputs = {make_int_tensor({2, 4}, {1, 3, 1, 0, 0, 0, 0, 0})};
  c.weights["embeddings"] = random_tensor({5, 2}, 3);
  const Tensor dy = make_tensor({2, 4, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  auto r = run_training_node(c, {dy});
  // Row 0: positions 3..7 (ids 0, masked or not: mask_zero masks consumers, not the gradient);
  // row 1: positions 0 and 2; row 3: position 1; rows 2 and 4: never looked up.
  check_close(r.diff_weights[0],
              {7 + 9 + 11 + 13 + 15, 8 + 10 + 12 + 14 + 16, 1 + 5, 2 + 6, 0, 0, 3, 4, 0, 0}, 0, 0);
  REQUIRE(r.output_masks[0].size() == 8);
  const std::vector<uint8_t> want_mask{1, 1, 1, 0, 0, 0, 0, 0};
  CHECK(r.output_masks[0] == want_mask);
  check_close(r.outputs[0],
              ref::embedding(ids_of(c.inputs[0]), c.weights["embeddings"].data<float>(), 2), 0, 0);
}

TEST_CASE("embedding gradient: frozen writes nothing, out-of-range ids fail in the forward") {
  TrainingNodeCase c;
  c.yaml = graph("[3]", "input_dim: 4, output_dim: 3");
  c.inputs = {make_int_tensor({1, 3}, {0, 1, 2})};
  c.weights["embeddings"] = random_tensor({4, 3}, 5);
  c.frozen = true;
  auto r = run_training_node(c, {random_tensor({1, 3, 3}, 6)});
  for (size_t i = 0; i < r.diff_weights[0].size(); ++i)
    REQUIRE(r.diff_weights[0].data<float>()[i] == 0.0f);
  c.frozen = false;
  c.inputs = {make_int_tensor({1, 3}, {0, 4, 2})};
  try {
    run_training_node(c, {});
    FAIL("no error for id 4 with input_dim 4");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("index 4") != std::string::npos);
  }
}
