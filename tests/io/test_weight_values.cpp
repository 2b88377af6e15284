// NaN and Inf weights are reported when a weights file is loaded (issue 14), through the same
// Diagnostic warnings as the graph's: the count and the first tensor holding one.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/safetensors.hpp"
#include "engine/weights.hpp"
#include "tests/io/io_test_util.hpp"

TEST_CASE("loading a weights file warns about NaN and Inf values, naming the first tensor") {
  fg::test::TempDir dir;
  const std::string path = dir.file("w.safetensors");
  std::map<std::string, fg::Tensor> tensors;
  tensors.emplace("a.kernel", fg::Tensor(fg::DType::f32, {3, 7}));
  fg::Tensor b(fg::DType::f32, {13});
  b.mutable_data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  b.mutable_data<float>()[12] = -std::numeric_limits<float>::infinity();
  tensors.emplace("b.bias", b);
  fg::Tensor c(fg::DType::f32, {2});
  c.mutable_data<float>()[1] = std::numeric_limits<float>::infinity();
  tensors.emplace("c.bias", c);
  fg::write_safetensors(path, tensors);

  const fg::WeightStore store = fg::WeightStore::load_safetensors(path);
  REQUIRE(store.warnings().size() == 1);
  const std::string text = store.warnings()[0].format();
  CAPTURE(text);
  CHECK(text.find(path + ": warning: ") == 0);
  CHECK(text.find("3 non-finite weight values") != std::string::npos);
  CHECK(text.find("tensor 'b.bias' at flat index 5") != std::string::npos);
}

TEST_CASE("finite weights give no warning") {
  fg::test::TempDir dir;
  const std::string path = dir.file("w.safetensors");
  fg::Tensor t(fg::DType::f32, {127});
  for (int i = 0; i < 127; ++i) t.mutable_data<float>()[i] = std::ldexp(1.0f, i - 63);
  fg::write_safetensors(path, {{"x.kernel", t}});
  CHECK(fg::WeightStore::load_safetensors(path).warnings().empty());
}
