// dropout: identity at inference, rate validation, Keras's training-only keys accepted.
#include <fmt/format.h>

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {
std::string dropout_yaml(const std::string& shape, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: d, op: dropout, input: x, {}}}\n"
      "outputs: [d]\n",
      shape, attrs);
}
}  // namespace

TEST_CASE("dropout is the identity at inference") {
  for (int64_t batch : {1, 4}) {
    Tensor x = random_tensor({batch, 7, 13}, 9);
    auto out = run_yaml(dropout_yaml("[7, 13]", "rate: 0.5"), {{"x", x}}, {});
    check_shape(out.at("d"), {batch, 7, 13});
    check_close(out.at("d"), to_doubles(x), 0, 0);
    Tensor y = random_tensor({batch, 127}, 10);
    out = run_yaml(dropout_yaml("[127]", "rate: 0, noise_shape: [null, 1], seed: 42"), {{"x", y}},
                   {});
    check_close(out.at("d"), to_doubles(y), 0, 0);
  }
}

TEST_CASE("dropout attributes") {
  CHECK(compile_error(dropout_yaml("[7]", "rate: 0.2, noise_shape: null")) == "");
  std::string e = compile_error(dropout_yaml("[7]", "rate: 1.5"));
  CHECK(e.find("dropout rate must be in [0, 1), got 1.5") != std::string::npos);
  CHECK(e.find("test.yaml:5:") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "rate: 1"));
  CHECK(e.find("must be in [0, 1)") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "rate: -0.1"));
  CHECK(e.find("must be in [0, 1)") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "seed: 1"));
  CHECK(e.find("missing required attribute 'rate'") != std::string::npos);
  e = compile_error(dropout_yaml("[7]", "rate: 0.1, noise_shape: x"));
  CHECK(e.find("noise_shape") != std::string::npos);
  CHECK(builtin_ops().find("dropout")->create()->supports_masking());
}
