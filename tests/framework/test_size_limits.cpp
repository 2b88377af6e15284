// Every element and byte count is checked against kMaxTensorBytes (2^40 bytes, docs/limits.md):
// the reproducers of issue 14 ("Sizes and arithmetic") end in an fg::Error naming the input,
// node or weight, instead of a wrapped byte count and writes past a 64-byte buffer.
#include <doctest/doctest.h>

#include <fusiongraph/fusiongraph.hpp>

#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const char* kLimitText = "1099511627776 bytes (2^40, 1 TiB)";

}  // namespace

TEST_CASE("an input of 2^62 elements is rejected when the graph is compiled") {
  const std::string message = fg::test::compile_error(
      "inputs:\n  x: {shape: [4611686018427387904]}\nnodes:\n"
      "  - {name: r, op: reshape, input: x, target_shape: [-1, 1]}\noutputs: [r]\n",
      "big.yaml");
  CAPTURE(message);
  CHECK(contains(message, "big.yaml:2:3"));
  CHECK(contains(message, "tensor 'x'"));
  CHECK(contains(message, kLimitText));
}

TEST_CASE("a static input just within the limit compiles, one element more does not") {
  // 2^38 float32 elements are exactly 2^40 bytes.
  CHECK(fg::test::compile_error("inputs:\n  x: {shape: [274877906944]}\nnodes:\n"
                                "  - {name: a, op: activation, input: x, activation: relu}\n"
                                "outputs: [a]\n") == "");
  CHECK(contains(fg::test::compile_error("inputs:\n  x: {shape: [274877906945]}\nnodes:\n"
                                         "  - {name: a, op: activation, input: x, "
                                         "activation: relu}\noutputs: [a]\n"),
                 kLimitText));
}

TEST_CASE("a dense with 2^62 units is rejected at the node") {
  const std::string message = fg::test::compile_error(
      "inputs:\n  x: {shape: [8]}\nnodes:\n"
      "  - {name: d, op: dense, input: x, units: 4611686018427387904}\noutputs: [d]\n");
  CAPTURE(message);
  CHECK(contains(message, "test.yaml:4:5"));
  CHECK(contains(message, "node 'd' (dense)"));
  CHECK(contains(message, kLimitText));
}

TEST_CASE("a weight beyond the limit is rejected at the node, even on a dead node") {
  // 4096 x 2^26 = 2^38 elements of kernel (2^40 bytes) plus one more input channel.
  const std::string message = fg::test::compile_error(
      "inputs:\n  x: {shape: [4097]}\nnodes:\n"
      "  - {name: big, op: dense, input: x, units: 67108864}\n"
      "  - {name: d, op: dense, input: x, units: 3}\noutputs: [d]\n");
  CAPTURE(message);
  CHECK(contains(message, "node 'big' (dense)"));
  CHECK(contains(message, "weight 'kernel'"));
  CHECK(contains(message, kLimitText));
}

TEST_CASE("a conv1d with kernel_size 2^63 - 1 on a node that reaches no output is an error") {
  const std::string message = fg::test::compile_error(
      "inputs:\n  x: {shape: [16, 4]}\nnodes:\n"
      "  - {name: c, op: conv1d, input: x, filters: 2, kernel_size: 9223372036854775807, "
      "padding: same}\n"
      "  - {name: d, op: dense, input: x, units: 3}\noutputs: [d]\n");
  CAPTURE(message);
  CHECK(contains(message, "node 'c' (conv1d)"));
}

TEST_CASE("--dim and --batch values are bound within the limit, naming the input") {
  auto def = fg::load_graph_file(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  const fg::CompiledGraph g = fg::compile_graph(def, fg::builtin_ops());
  try {
    g.concrete_input_shapes(1, {{"text", {4611686018427387904LL}}, {"audio", {16000}}});
    FAIL("no error");
  } catch (const fg::Error& e) {
    CAPTURE(e.what());
    CHECK(e.tensor_name() == "text");
    CHECK(contains(e.what(), kLimitText));
  }
  try {
    g.concrete_input_shapes(int64_t(1) << 40, {{"text", {100}}, {"audio", {16000}}});
    FAIL("no error");
  } catch (const fg::Error& e) {
    CHECK(contains(e.what(), kLimitText));
  }
  // bind checks shapes given directly too
  std::vector<fg::Dims> shapes = {{1, 16000, 1}, {1, 224, 224, 3}, {1, 4611686018427387904LL}};
  CHECK_THROWS_AS(g.bind(shapes), fg::Error);
}

TEST_CASE("summary with a dim beyond the limit is an error, not negative FLOPs") {
  auto def = fg::load_graph_file(fg::test::source_path("graphs/multimodal_fusion.yaml"));
  const fg::CompiledGraph g = fg::compile_graph(def, fg::builtin_ops());
  fg::SummaryOptions o;
  o.dims = {{"text", {9223372036854775807LL}}, {"audio", {16000}}};
  CHECK_THROWS_WITH_AS(fg::summarize(g, o), doctest::Contains("2^40"), fg::Error);
}

TEST_CASE("FLOP counts beyond the int64 range print as floating point, never negative") {
  // A conv2d of 2^34 positions x 16 filters x a 4096 x 4096 kernel: 2^63 FLOPs per sample.
  auto g = fg::test::compile_yaml(
      "inputs:\n  x: {shape: [131072, 131072, 1]}\nnodes:\n"
      "  - {name: c, op: conv2d, input: x, filters: 16, kernel_size: 4096, padding: same}\n"
      "outputs: [c]\n");
  fg::Summary s = fg::summarize(*g, {});
  CHECK(s.total_flops > 9.2e18);
  const std::string table = fg::format_summary_table(s);
  CAPTURE(table);
  CHECK(contains(table, "e+18 ("));
  CHECK_FALSE(contains(table, "FLOPs per sample: -"));
  const std::string json = fg::format_summary_json(s);
  // JSON carries the double in full (2^63 = 9.223372036854776e+18), not a wrapped integer
  CHECK(contains(json, "\"flops_per_sample\": 9.223372036854776e+18"));
  CHECK_FALSE(contains(json, "\"flops_per_sample\": -"));
}

TEST_CASE("the Tensor constructor refuses byte counts that wrap or exceed the limit") {
  CHECK_THROWS_WITH_AS(fg::Tensor(fg::DType::f32, {int64_t(1) << 62}), doctest::Contains("2^40"),
                       fg::Error);
  CHECK_THROWS_AS(fg::Tensor(fg::DType::i32, {int64_t(1) << 20, int64_t(1) << 20, 1 << 20}),
                  fg::Error);
  CHECK_THROWS_AS(fg::Tensor(fg::DType::f32, {int64_t(1) << 39}), fg::Error);
  // an empty tensor is fine whatever its other dims
  fg::Tensor empty(fg::DType::f32, {0, int64_t(1) << 62});
  CHECK(empty.size() == 0);
  float x = 1;
  CHECK_THROWS_AS(fg::Tensor::borrow(fg::DType::f32, {int64_t(1) << 62}, &x, nullptr), fg::Error);
}

TEST_CASE("a null pointer borrowed as a Session::run input is an fg::Error, not a segfault") {
  fg::Session session = fg::load_string(
      "inputs:\n  x: {shape: [3]}\nnodes:\n"
      "  - {name: a, op: activation, input: x, activation: relu}\noutputs: [a]\n");
  auto run_with_null = [&] {
    std::map<std::string, fg::Tensor> inputs;
    inputs.emplace("x", fg::Tensor::borrow(fg::DType::f32, {2, 3}, nullptr, nullptr));
    session.run(inputs);
  };
  CHECK_THROWS_WITH_AS(run_with_null(), doctest::Contains("null data pointer"), fg::Error);
}
