// permute (Keras Permute): output axis i is input axis dims[i-1]; checked against an index
// computation in the test, with the gradient (the inverse permutation) by finite differences.
#include <fmt/format.h>

#include <numeric>

#include "tests/layers/gradient_check.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

std::string permute_yaml(const std::string& per_sample, const std::string& dims) {
  return fmt::format(
      "name: t\ninputs:\n  x: {{shape: {}}}\nnodes:\n  - {{name: p, op: permute, input: x, dims: "
      "{}}}\noutputs: [p]\n",
      per_sample, dims);
}

// y[b, o1, ..., on] = x[b, i...] with i[perm[k]] = o[k] (perm includes the batch axis 0).
std::vector<double> naive_permute(const std::vector<double>& x, const Dims& in,
                                  const std::vector<int64_t>& perm) {
  Dims out;
  for (int64_t p : perm) out.push_back(in[p]);
  std::vector<int64_t> in_strides(in.size(), 1);
  for (size_t d = in.size() - 1; d-- > 0;) in_strides[d] = in_strides[d + 1] * in[d + 1];
  std::vector<double> y(x.size());
  for (size_t flat = 0; flat < y.size(); ++flat) {
    int64_t rest = static_cast<int64_t>(flat), src = 0;
    for (size_t k = out.size(); k-- > 0;) {
      src += (rest % out[k]) * in_strides[perm[k]];
      rest /= out[k];
    }
    y[flat] = x[src];
  }
  return y;
}

}  // namespace

TEST_CASE("permute: Keras's axis order, forward and gradient") {
  struct Case {
    Dims shape;
    std::string per_sample, dims;
    std::vector<int64_t> perm;
    Dims out;
  };
  for (const Case& c : {Case{{2, 3, 16}, "[3, 16]", "[2, 1]", {0, 2, 1}, {2, 16, 3}},
                        Case{{1, 7, 13}, "[7, 13]", "[2, 1]", {0, 2, 1}, {1, 13, 7}},
                        Case{{3, 2, 5, 7}, "[2, 5, 7]", "[3, 1, 2]", {0, 3, 1, 2}, {3, 7, 2, 5}},
                        Case{{2, 4, 3}, "[4, 3]", "[1, 2]", {0, 1, 2}, {2, 4, 3}}}) {
    CAPTURE(c.dims);
    const Tensor x = random_tensor(c.shape, 5);
    auto out = run_yaml(permute_yaml(c.per_sample, c.dims), {{"x", x}}, {});
    check_shape(out.at("p"), c.out);
    check_close(out.at("p"), naive_permute(to_doubles(x), c.shape, c.perm), 0, 0);
    TrainingNodeCase tc;
    tc.yaml = permute_yaml(c.per_sample, c.dims);
    tc.inputs = {x};
    check_gradients(tc, [&](const auto& xs, const auto&) {
      return std::vector<std::vector<double>>{naive_permute(xs[0], c.shape, c.perm)};
    });
  }
}

TEST_CASE("permute: attribute errors") {
  CHECK(compile_error(permute_yaml("[3, 16]", "[1, 1]")).find("not a permutation of 1..2") !=
        std::string::npos);
  CHECK(compile_error(permute_yaml("[3, 16]", "[0, 1]")).find("not a permutation") !=
        std::string::npos);
  CHECK(compile_error(permute_yaml("[3, 16]", "[2, 1, 3]")).find("3 entries") != std::string::npos);
}
