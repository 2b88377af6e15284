// global_{average,max}_pooling{1,2}d against the naive reference, keepdims shapes, errors.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "framework/compiler.hpp"
#include "framework/registry.hpp"
#include "framework/yaml_loader.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::Dims;
using fg::Tensor;

fg::ref::Array to_array(const Tensor& t) {
  return {t.shape(), fg::test::to_doubles(t)};
}

std::string gp_yaml(const std::string& op, const std::string& in_shape, const std::string& attrs,
                    const std::string& dtype = "") {
  return fmt::format(R"(name: t
inputs:
  x: {{shape: {}{}}}
nodes:
  - {{name: p, op: {}, input: x{}}}
outputs: [p]
)",
                     in_shape, dtype.empty() ? "" : ", dtype: " + dtype, op,
                     attrs.empty() ? "" : ", " + attrs);
}

Dims output_shape(const std::string& yaml) {
  auto graph = fg::compile_graph(fg::load_graph_string(yaml, "t.yaml"), fg::OpRegistry::builtins());
  return graph.tensors().at(graph.find_tensor("p")).type.shape;
}

}  // namespace

TEST_CASE("global pooling 1d matches the reference") {
  uint64_t seed = 3000;
  for (Dims shape :
       {Dims{1, 7, 3}, Dims{3, 13, 5}, Dims{3, 127, 13}, Dims{2, 64, 32}, Dims{1, 1, 7}})
    for (bool max : {true, false})
      for (bool keepdims : {false, true}) {
        CAPTURE(shape[1]);
        CAPTURE(shape[2]);
        CAPTURE(max);
        CAPTURE(keepdims);
        const std::string yaml =
            gp_yaml(max ? "global_max_pooling1d" : "global_average_pooling1d",
                    fmt::format("[{}, {}]", shape[1], shape[2]), keepdims ? "keepdims: true" : "");
        Tensor x = fg::test::random_tensor(shape, seed += 3);
        auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
        auto want = fg::ref::global_pool(to_array(x), max);
        fg::test::check_shape(out.at("p"),
                              keepdims ? Dims{shape[0], 1, shape[2]} : Dims{shape[0], shape[2]});
        fg::test::check_close(out.at("p"), want.data);
      }
}

TEST_CASE("global pooling 2d matches the reference") {
  uint64_t seed = 4000;
  for (Dims shape : {Dims{1, 7, 13, 3}, Dims{3, 13, 7, 5}, Dims{3, 11, 9, 13}, Dims{2, 16, 16, 32}})
    for (bool max : {true, false})
      for (bool keepdims : {false, true}) {
        CAPTURE(shape[1]);
        CAPTURE(shape[2]);
        CAPTURE(max);
        CAPTURE(keepdims);
        const std::string yaml = gp_yaml(max ? "global_max_pooling2d" : "global_average_pooling2d",
                                         fmt::format("[{}, {}, {}]", shape[1], shape[2], shape[3]),
                                         keepdims ? "keepdims: true" : "");
        Tensor x = fg::test::random_tensor(shape, seed += 3);
        auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
        auto want = fg::ref::global_pool(to_array(x), max);
        fg::test::check_shape(out.at("p"),
                              keepdims ? Dims{shape[0], 1, 1, shape[3]} : Dims{shape[0], shape[3]});
        fg::test::check_close(out.at("p"), want.data);
      }
}

TEST_CASE("global pooling shapes with null lengths and keepdims") {
  CHECK(output_shape(gp_yaml("global_average_pooling1d", "[null, 6]", "")) ==
        Dims{fg::kDynamic, 6});
  CHECK(output_shape(gp_yaml("global_max_pooling2d", "[null, null, 6]", "keepdims: true")) ==
        Dims{fg::kDynamic, 1, 1, 6});
  // One graph, two lengths.
  const std::string yaml = gp_yaml("global_average_pooling1d", "[null, 5]", "");
  for (int64_t len : {3, 13}) {
    Tensor x = fg::test::random_tensor({2, len, 5}, 50 + len);
    auto out = fg::test::run_yaml(yaml, {{"x", x}}, {});
    fg::test::check_close(out.at("p"), fg::ref::global_pool(to_array(x), false).data);
  }
}

TEST_CASE("global pooling errors are clear") {
  using fg::test::compile_error;
  auto has = [](const std::string& msg, const std::string& part) {
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  std::string e = compile_error(gp_yaml("global_average_pooling1d", "[7, 7, 3]", ""));
  has(e, "rank-3");
  has(e, "(None, 7, 7, 3)");
  has(e, "global_average_pooling2d");
  e = compile_error(gp_yaml("global_max_pooling2d", "[7, 3]", ""));
  has(e, "rank-4");
  has(e, "global_max_pooling1d");
  e = compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "", "int32"));
  has(e, "float32");
  has(e, "embedding");
  has(compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "keepdim: true")), "keepdims");
  has(compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "keepdims: maybe")), "keepdims");
  CHECK(compile_error(gp_yaml("global_max_pooling1d", "[7, 3]", "keepdims: false")) == "");
}

// TODO(masking): masked global_average_pooling1d through `embedding(mask_zero) ->
// global_average_pooling1d`, and the rejection of masks by the other pooling ops, need the
// embedding op (not on main yet). The masked kernel path is written (layers/global_pooling.cpp).
