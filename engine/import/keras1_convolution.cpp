// Keras 1's Convolution1D / Convolution2D read as Keras 2's Conv1D / Conv2D, by the rules of
// Keras 2's own loader (keras/engine/saving.py, preprocess_weights_for_loading):
//   - Convolution1D's kernel is (filter_length, 1, input_dim, nb_filter) (Keras 1.1:
//     (nb_filter, input_dim, filter_length, 1), transposed (2, 3, 1, 0) first); Keras 2's is
//     that without axis 1;
//   - Convolution2D's kernel with dim_ordering 'th' is (nb_filter, stack, rows, cols),
//     transposed (2, 3, 1, 0) into Keras 2's (rows, cols, stack, nb_filter); with 'tf' it is
//     Keras 2's already;
//   - a kernel trained with Theano (the file's `backend` attribute) is a true convolution's:
//     flipped along its spatial axes (conv_utils.convert_kernel) for a correlation. A file
//     without the attribute does not say which, and is refused.
#include <fmt/format.h>

#include <cstring>

#include "engine/import/keras_layers.hpp"

namespace fg::keras {
namespace {

using json = nlohmann::json;

const json& key_of(const Builder& b, const Layer& l, const char* key) {
  auto it = l.config.find(key);
  if (it == l.config.end() || it->is_null())
    throw b.error(l, fmt::format("the Keras 1 config has no '{}'", key));
  return *it;
}

int64_t positive_int(const Builder& b, const Layer& l, const char* key) {
  const json& v = key_of(b, l, key);
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    throw b.error(l, fmt::format("'{}' is {}, expected a positive integer", key, v.dump()));
  return v.get<int64_t>();
}

// true: the kernel was trained with Theano (flip it); false: TensorFlow's (as it is).
bool trained_with_theano(const Builder& b, const Layer& l) {
  if (b.backend() == "theano") return true;
  if (b.backend() == "tensorflow") return false;
  if (b.backend().empty())
    throw b
        .error(l,
               "the file does not record the Keras backend (no root attribute 'backend'): "
               "a kernel trained with Theano is flipped against TensorFlow's, so its "
               "weights cannot be bound safely")
        .hint(
            "load the model in Keras and save it again (Keras 2 records the backend), or "
            "add the root attribute backend = 'tensorflow' or 'theano' to the .h5 file");
  throw b.error(
      l, fmt::format("backend '{}': only tensorflow and theano kernels are known", b.backend()));
}

// out[i, j, k, l] = in[l, k, i, j] (numpy's transpose (2, 3, 1, 0)).
Tensor transpose_2310(const Tensor& in) {
  const Dims& s = in.shape();
  Tensor out(DType::f32, {s[2], s[3], s[1], s[0]});
  const float* src = in.data<float>();
  float* dst = out.mutable_data<float>();
  for (int64_t l = 0; l < s[0]; ++l)
    for (int64_t k = 0; k < s[1]; ++k)
      for (int64_t i = 0; i < s[2]; ++i)
        for (int64_t j = 0; j < s[3]; ++j)
          dst[((i * s[3] + j) * s[1] + k) * s[0] + l] = src[((l * s[1] + k) * s[2] + i) * s[3] + j];
  return out;
}

// A Keras 2 kernel [spatial..., in, out] reversed along every spatial axis.
Tensor flip_spatially(const Tensor& in) {
  const Dims& s = in.shape();
  const size_t spatial = s.size() - 2;
  const int64_t inner = s[spatial] * s[spatial + 1];
  int64_t cells = 1;
  for (size_t a = 0; a < spatial; ++a) cells *= s[a];
  Tensor out(DType::f32, s);
  for (int64_t c = 0; c < cells; ++c) {
    int64_t rest = c, flipped = 0, stride = 1;
    for (size_t a = spatial; a-- > 0;) {
      const int64_t i = rest % s[a];
      rest /= s[a];
      flipped += (s[a] - 1 - i) * stride;
      stride *= s[a];
    }
    std::memcpy(out.mutable_data<float>() + flipped * inner, in.data<float>() + c * inner,
                inner * sizeof(float));
  }
  return out;
}

std::string padding_of(const Builder& b, const Layer& l) {
  auto it = l.config.find("border_mode");
  const std::string mode = it != l.config.end() && it->is_string() ? it->get<std::string>() : "";
  if (mode != "valid" && mode != "same")
    throw b.error(l, fmt::format("border_mode {} is not supported (valid, same)",
                                 it == l.config.end() ? "missing" : it->dump()));
  return mode;
}

}  // namespace

Layer keras1_convolution_as_keras2(const Builder& b, const Layer& l) {
  Layer k2 = l;
  json& c = k2.config;
  const bool two_d = l.class_name == "Convolution2D";
  k2.class_name = two_d ? "Conv2D" : "Conv1D";
  c["filters"] = positive_int(b, l, "nb_filter");
  c["padding"] = padding_of(b, l);
  c["use_bias"] = l.config.value("bias", true);
  if (two_d) {
    c["kernel_size"] = {positive_int(b, l, "nb_row"), positive_int(b, l, "nb_col")};
    const json subsample = l.config.value("subsample", json::array({1, 1}));
    c["strides"] = subsample;
    const std::string ordering = l.config.value("dim_ordering", std::string());
    if (ordering != "th" && ordering != "tf")
      throw b.error(l, fmt::format("dim_ordering '{}' is not supported (th, tf)", ordering));
    c["data_format"] = ordering == "th" ? "channels_first" : "channels_last";
  } else {
    c["kernel_size"] = positive_int(b, l, "filter_length");
    c["strides"] = l.config.value("subsample_length", 1);
    c["data_format"] = "channels_last";
  }
  c.erase("dim_ordering");
  return k2;
}

std::vector<Tensor> keras1_convolution_weights(const Builder& b, const Layer& l,
                                               std::vector<Tensor> w) {
  if (w.empty()) throw b.error(l, "the file holds no weight arrays for this layer");
  const bool theano = trained_with_theano(b, l);
  Tensor& kernel = w[0];
  const Dims s = kernel.shape();
  const int64_t filters = positive_int(b, l, "nb_filter");
  if (l.class_name == "Convolution2D") {
    if (s.size() != 4)
      throw b.error(l, fmt::format("the kernel is {}, expected 4 axes", format_shape(s)));
    if (l.config.value("dim_ordering", std::string()) == "th") kernel = transpose_2310(kernel);
  } else {
    const int64_t length = positive_int(b, l, "filter_length");
    if (s.size() != 4)
      throw b.error(l, fmt::format("the kernel is {}, expected 4 axes", format_shape(s)));
    if (!(s[0] == length && s[1] == 1 && s[3] == filters)) {
      if (!(s[0] == filters && s[2] == length && s[3] == 1))
        throw b.error(l, fmt::format("the kernel is {}, expected ({}, 1, input_dim, {}) or "
                                     "Keras 1.1's ({}, input_dim, {}, 1)",
                                     format_shape(s), length, filters, filters, length));
      kernel = transpose_2310(kernel);  // Keras 1.1
    }
    Tensor squeezed(DType::f32, {kernel.shape()[0], kernel.shape()[2], kernel.shape()[3]});
    std::memcpy(squeezed.mutable_data<float>(), kernel.data<float>(), kernel.bytes());
    kernel = std::move(squeezed);
  }
  if (theano) kernel = flip_spatially(kernel);
  return w;
}

}  // namespace fg::keras
