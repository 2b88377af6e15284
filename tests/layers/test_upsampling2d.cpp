// upsampling2d against the naive reference (nearest = repeat, bilinear = TF half-pixel),
// square and non-square factors, odd and round sizes, batch 1 and > 1; errors.
#include <fmt/format.h>

#include "tests/layers/gradient_check.hpp"
#include "tests/reference/elementwise_fusion.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string up_yaml(Dim H, Dim W, Dim C, const std::string& attrs) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: [{}, {}, {}]}}\nnodes:\n"
      "  - {{name: u, op: upsampling2d, input: x{}}}\noutputs: [u]\n",
      H, W, C, attrs);
}

void check(Dim B, Dim H, Dim W, Dim C, Dim sh, Dim sw, bool bilinear, bool size_as_list,
           uint64_t seed) {
  CAPTURE(B);
  CAPTURE(H);
  CAPTURE(W);
  CAPTURE(C);
  CAPTURE(sh);
  CAPTURE(sw);
  CAPTURE(bilinear);
  std::string attrs;
  if (size_as_list)
    attrs += fmt::format(", size: [{}, {}]", sh, sw);
  else if (sh != 2)
    attrs += fmt::format(", size: {}", sh);
  if (bilinear) attrs += ", interpolation: bilinear";
  Tensor x = random_tensor({B, H, W, C}, seed, -1.f, 1.f);
  auto out = run_yaml(up_yaml(H, W, C, attrs), {{"x", x}}, {});
  check_shape(out.at("u"), {B, H * sh, W * sw, C});
  check_close(out.at("u"), ref::upsampling2d(to_doubles(x), B, H, W, C, sh, sw, bilinear), 1e-5,
              1e-6);
}

}  // namespace

TEST_CASE("upsampling2d nearest repeats rows and columns") {
  uint64_t seed = 4000;
  for (Dim B : {1, 3}) {
    check(B, 7, 13, 3, 2, 2, false, false, seed++);
    check(B, 4, 4, 64, 2, 2, false, true, seed++);
    check(B, 5, 3, 7, 3, 3, false, false, seed++);
    check(B, 5, 3, 7, 1, 2, false, true, seed++);
    check(B, 13, 7, 1, 3, 2, false, true, seed++);
  }
  // hand-checked small case: [[1, 2], [3, 4]] with size (1, 2)
  auto out = run_yaml(up_yaml(2, 2, 1, ", size: [1, 2]"),
                      {{"x", make_tensor({1, 2, 2, 1}, {1, 2, 3, 4})}}, {});
  check_close(out.at("u"), {1, 1, 2, 2, 3, 3, 4, 4}, 0, 0);
}

TEST_CASE("upsampling2d bilinear uses TF half-pixel centres") {
  uint64_t seed = 4100;
  for (Dim B : {1, 2}) {
    check(B, 7, 13, 3, 2, 2, true, false, seed++);
    check(B, 8, 8, 32, 2, 2, true, false, seed++);
    check(B, 5, 3, 7, 3, 3, true, false, seed++);
    check(B, 5, 6, 4, 2, 3, true, true, seed++);
    check(B, 1, 1, 5, 4, 4, true, false, seed++);
  }
  // hand-computed: [0, 4] upsampled by 2 along W gives 0, 1, 3, 4 (source x = -0.25 -> edge,
  // 0.25, 0.75, 1.25 -> edge)
  auto out = run_yaml(up_yaml(1, 2, 1, ", size: [1, 2], interpolation: bilinear"),
                      {{"x", make_tensor({1, 1, 2, 1}, {0, 4})}}, {});
  check_close(out.at("u"), {0, 1, 3, 4}, 1e-6, 1e-6);
}

TEST_CASE("upsampling2d errors and shapes") {
  std::string e = compile_error(up_yaml(4, 4, 3, ", size: 0"));
  CHECK(e.find("positive") != std::string::npos);
  e = compile_error(up_yaml(4, 4, 3, ", size: [2, 2, 2]"));
  CHECK(e != "");
  e = compile_error(up_yaml(4, 4, 3, ", interpolation: bicubic"));
  CHECK(e.find("bilinear") != std::string::npos);
  e = compile_error(up_yaml(4, 4, 3, ", data_format: channels_first"));
  CHECK(e.find("channels_last") != std::string::npos);
  e = compile_error(
      "name: t\ninputs:\n  x: {shape: [4, 3]}\nnodes:\n"
      "  - {name: u, op: upsampling2d, input: x}\noutputs: [u]\n");
  CHECK(e.find("rank-4") != std::string::npos);
  CHECK(compile_error("name: t\ninputs:\n  x: {shape: [null, null, 3]}\nnodes:\n"
                      "  - {name: u, op: upsampling2d, input: x}\noutputs: [u]\n") == "");
}

// ---- training: the gradient against finite differences of the naive reference ----

TEST_CASE("upsampling2d gradient: nearest and bilinear, square and non-square factors") {
  uint64_t seed = 4500;
  struct Case {
    Dim B, H, W, C, sh, sw;
  };
  for (const Case& k : {Case{1, 7, 5, 3, 2, 2}, Case{2, 4, 4, 16, 2, 2}, Case{3, 13, 7, 1, 3, 2},
                        Case{2, 5, 3, 7, 1, 3}, Case{1, 1, 1, 2, 2, 2}})
    for (bool bilinear : {false, true}) {
      CAPTURE(k.B);
      CAPTURE(k.H);
      CAPTURE(k.W);
      CAPTURE(k.C);
      CAPTURE(k.sh);
      CAPTURE(k.sw);
      CAPTURE(bilinear);
      TrainingNodeCase c;
      c.yaml = up_yaml(k.H, k.W, k.C,
                       fmt::format(", size: [{}, {}]{}", k.sh, k.sw,
                                   bilinear ? ", interpolation: bilinear" : ""));
      c.inputs = {random_tensor({k.B, k.H, k.W, k.C}, ++seed)};
      GradientTolerance tol;
      tol.max_checked = 150;
      check_gradients(
          c,
          [&](const auto& x, const auto&) {
            return std::vector<std::vector<double>>{
                ref::upsampling2d(x[0], k.B, k.H, k.W, k.C, k.sh, k.sw, bilinear)};
          },
          tol);
    }
}
