// Keras 1's Convolution1D / Convolution2D (engine/import/keras1_convolution.cpp): Keras 1.2
// Sequential `.h5` files written by the format's rules (tests/import/keras_writers.hpp) with
// random kernels in Keras 1's layouts, imported and compared with the naive conv references of
// tests/reference/ fed the kernel rearranged here by plain loops (Keras 2's loader's rules:
// 'th' kernels (nb_filter, stack, rows, cols), 'tf' kernels (rows, cols, stack, nb_filter),
// Convolution1D (filter_length, 1, input_dim, nb_filter) or Keras 1.1's (nb_filter, input_dim,
// filter_length, 1); a Theano-trained kernel flipped spatially). A file without the backend
// attribute is refused.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fusiongraph/import.hpp>

#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/reference/conv_pool.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

using test::import_error;

std::string keras1_sequential(const std::string& cls, const std::string& fields) {
  return fmt::format(
      R"({{"class_name": "Sequential", "config": [{{"class_name": "{}", "config": {{"name": "conv", "trainable": true, "init": "glorot_uniform", "W_regularizer": null, "b_regularizer": null, {}}}}}]}})",
      cls, fields);
}

ref::Array array_of(const Tensor& t) {
  ref::Array a;
  a.shape.assign(t.shape().begin(), t.shape().end());
  a.data = test::to_doubles(t);
  return a;
}

Tensor tensor_of(const ref::Array& a) {
  Tensor t(DType::f32, Dims(a.shape.begin(), a.shape.end()));
  for (size_t i = 0; i < a.data.size(); ++i)
    t.mutable_data<float>()[i] = static_cast<float>(a.data[i]);
  return t;
}

// [B, C, H, W] <-> [B, H, W, C]
ref::Array nchw_to_nhwc(const ref::Array& x) {
  const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  ref::Array y{{B, H, W, C}, std::vector<double>(x.data.size())};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          y.data[((b * H + h) * W + w) * C + c] = x.data[((b * C + c) * H + h) * W + w];
  return y;
}
ref::Array nhwc_to_nchw(const ref::Array& x) {
  const int64_t B = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3];
  ref::Array y{{B, C, H, W}, std::vector<double>(x.data.size())};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          y.data[((b * C + c) * H + h) * W + w] = x.data[((b * H + h) * W + w) * C + c];
  return y;
}

void check_conv(const ImportedModel& m, const Tensor& x, const ref::Array& want) {
  auto graph = std::make_shared<CompiledGraph>(
      compile_graph(load_graph_string(format_imported_yaml(m), "imported.yaml"), builtin_ops()));
  ModelOptions options;
  options.optimize = false;
  Model model(graph, m.weights, options);
  ReferenceSet ref;
  ref.source = "test";
  ref.inputs = {{m.graph->inputs[0].name, x}};
  ref.activations = {{"conv", tensor_of(want)}};
  const VerifyReport r = verify_against_reference(model, ref);
  for (const VerifyRow& row : r.rows) {
    CAPTURE(row.node);
    CAPTURE(row.max_abs);
    CHECK(row.ok);
  }
  CHECK(r.ok());
  CHECK(r.rows.size() == 1);
}

const char* kConv2dFields =
    R"("nb_filter": 5, "nb_row": 3, "nb_col": 2, "border_mode": "same", "subsample": [2, 1], "activation": "relu", "bias": true)";

}  // namespace

TEST_CASE("Keras 1 Convolution2D, dim_ordering th, TensorFlow: the kernel transposed") {
  test::NamedTempDir dir("fg_keras1_conv", "th");
  const Tensor w = test::random_tensor({5, 3, 3, 2}, 71), bias = test::random_tensor({5}, 72);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path,
      keras1_sequential(
          "Convolution2D",
          std::string(R"("batch_input_shape": [null, 3, 7, 9], "dim_ordering": "th", )") +
              kConv2dFields),
      {"conv"}, {{"conv", {{"conv_W", w}, {"conv_b", bias}}}}, "1.2.2", "tensorflow");
  const ImportedModel m = import_keras_model(path);
  // Keras 2's kernel [rows, cols, stack, filters][r][c][s][f] = th [f][s][r][c]
  ref::Array kernel{{3, 2, 3, 5}, std::vector<double>(90)};
  for (int f = 0; f < 5; ++f)
    for (int s = 0; s < 3; ++s)
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 2; ++c)
          kernel.data[((r * 2 + c) * 3 + s) * 5 + f] =
              w.data<float>()[((f * 3 + s) * 3 + r) * 2 + c];
  const Tensor x = test::random_tensor({2, 3, 7, 9}, 73);
  const ref::Array y = ref::conv2d(nchw_to_nhwc(array_of(x)), kernel, test::to_doubles(bias), 2, 1,
                                   1, 1, "same", "relu");
  check_conv(m, x, nhwc_to_nchw(y));
}

TEST_CASE("Keras 1 Convolution2D, dim_ordering tf, Theano: the kernel flipped") {
  test::NamedTempDir dir("fg_keras1_conv", "theano");
  const Tensor w = test::random_tensor({3, 2, 3, 5}, 81), bias = test::random_tensor({5}, 82);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path,
      keras1_sequential(
          "Convolution2D",
          std::string(R"("batch_input_shape": [null, 7, 9, 3], "dim_ordering": "tf", )") +
              kConv2dFields),
      {"conv"}, {{"conv", {{"conv_W", w}, {"conv_b", bias}}}}, "1.2.2", "theano");
  const ImportedModel m = import_keras_model(path);
  ref::Array kernel{{3, 2, 3, 5}, std::vector<double>(90)};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 15; ++i)
        kernel.data[(r * 2 + c) * 15 + i] = w.data<float>()[((2 - r) * 2 + (1 - c)) * 15 + i];
  const Tensor x = test::random_tensor({2, 7, 9, 3}, 83);
  check_conv(m, x,
             ref::conv2d(array_of(x), kernel, test::to_doubles(bias), 2, 1, 1, 1, "same", "relu"));
  // the same file said tensorflow: not flipped, so it differs (the flip is what makes it match)
  test::write_legacy_model(
      path,
      keras1_sequential(
          "Convolution2D",
          std::string(R"("batch_input_shape": [null, 7, 9, 3], "dim_ordering": "tf", )") +
              kConv2dFields),
      {"conv"}, {{"conv", {{"conv_W", w}, {"conv_b", bias}}}}, "1.2.2", "tensorflow");
  const ImportedModel unflipped = import_keras_model(path);
  CHECK(test::to_doubles(*unflipped.weights.find("conv.kernel")) == test::to_doubles(w));
  CHECK(test::to_doubles(*m.weights.find("conv.kernel")) != test::to_doubles(w));
}

TEST_CASE("Keras 1 Convolution1D: Keras 1.2 and 1.1 kernel layouts, Theano flip") {
  test::NamedTempDir dir("fg_keras1_conv", "conv1d");
  const char* fields =
      R"("batch_input_shape": [null, 11, 4], "nb_filter": 5, "filter_length": 3, "border_mode": "valid", "subsample_length": 2, "activation": "linear", "bias": true)";
  const Tensor bias = test::random_tensor({5}, 92);
  const Tensor x = test::random_tensor({3, 11, 4}, 93);
  // Keras 1.2: (filter_length, 1, input_dim, nb_filter), trained with Theano
  const Tensor w12 = test::random_tensor({3, 1, 4, 5}, 91);
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(path, keras1_sequential("Convolution1D", fields), {"conv"},
                           {{"conv", {{"conv_W", w12}, {"conv_b", bias}}}}, "1.2.2", "theano");
  ref::Array kernel{{3, 4, 5}, std::vector<double>(60)};
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 20; ++i) kernel.data[k * 20 + i] = w12.data<float>()[(2 - k) * 20 + i];
  check_conv(import_keras_model(path), x,
             ref::conv1d(array_of(x), kernel, test::to_doubles(bias), 2, 1, "valid", "linear"));
  // Keras 1.1: (nb_filter, input_dim, filter_length, 1), TensorFlow
  const Tensor w11 = test::random_tensor({5, 4, 3, 1}, 94);
  test::write_legacy_model(path, keras1_sequential("Convolution1D", fields), {"conv"},
                           {{"conv", {{"conv_W", w11}, {"conv_b", bias}}}}, "1.1.0", "tensorflow");
  for (int k = 0; k < 3; ++k)
    for (int c = 0; c < 4; ++c)
      for (int f = 0; f < 5; ++f)
        kernel.data[(k * 4 + c) * 5 + f] = w11.data<float>()[(f * 4 + c) * 3 + k];
  check_conv(import_keras_model(path), x,
             ref::conv1d(array_of(x), kernel, test::to_doubles(bias), 2, 1, "valid", "linear"));
}

TEST_CASE("Keras 1 convolutions without a recorded backend are refused") {
  test::NamedTempDir dir("fg_keras1_conv", "nobackend");
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path,
      keras1_sequential(
          "Convolution2D",
          std::string(R"("batch_input_shape": [null, 7, 9, 3], "dim_ordering": "tf", )") +
              kConv2dFields),
      {"conv"},
      {{"conv",
        {{"conv_W", test::random_tensor({3, 2, 3, 5}, 1)},
         {"conv_b", test::random_tensor({5}, 2)}}}},
      "1.2.2", "");
  const std::string e = import_error(path);
  CAPTURE(e);
  CHECK(e.find("layer 'conv' (Convolution2D): the file does not record the Keras backend") !=
        std::string::npos);
}
