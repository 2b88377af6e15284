// Deterministic Keras-style initial weights (graph-runner init). The random numbers come from a
// splitmix64 generator seeded from (seed, key), so they do not depend on the standard library.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <cmath>

#include "engine/weights.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {                                                           // Box-Muller
    double u1 = 1.0 - uniform();                                              // (0, 1]
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

uint64_t key_seed(const std::string& key, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 0x100000001B3ull;
  SplitMix64 mix(h ^ (seed * 0x9E3779B97F4A7C15ull));
  return mix.next();
}

void fill_uniform(Tensor& t, SplitMix64& rng, double lo, double hi) {
  float* p = t.mutable_data<float>();
  for (size_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(lo + (hi - lo) * rng.uniform());
}

// Keras Orthogonal(gain=1): rows = prod(shape[:-1]), cols = shape[-1]; QR of a normal
// [max, min] matrix, columns signed by diag(R), transposed when rows < cols.
void fill_orthogonal(Tensor& t, SplitMix64& rng, const std::string& key) {
  const Dims& s = t.shape();
  if (s.size() < 2)
    throw Error(fmt::format("orthogonal init needs a rank >= 2 shape, found {}", format_shape(s)))
        .tensor(key);
  const Eigen::Index cols = s.back();
  const Eigen::Index rows = static_cast<Eigen::Index>(t.size()) / std::max<Eigen::Index>(cols, 1);
  if (rows == 0 || cols == 0) return;
  const Eigen::Index big = std::max(rows, cols), small = std::min(rows, cols);
  Eigen::MatrixXd a(big, small);
  for (Eigen::Index i = 0; i < big; ++i)
    for (Eigen::Index j = 0; j < small; ++j) a(i, j) = rng.normal();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(big, small);
  for (Eigen::Index j = 0; j < small; ++j)
    if (qr.matrixQR()(j, j) < 0) q.col(j) *= -1.0;
  if (rows < cols) q.transposeInPlace();
  float* p = t.mutable_data<float>();
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) p[i * cols + j] = static_cast<float>(q(i, j));
}

// Keras fans when the op does not give them: [.., in, out] with receptive field = prod(rest).
void keras_fans(const Dims& s, int64_t& fan_in, int64_t& fan_out) {
  if (s.empty()) {
    fan_in = fan_out = 1;
  } else if (s.size() == 1) {
    fan_in = fan_out = s[0];
  } else {
    int64_t receptive = 1;
    for (size_t i = 0; i + 2 < s.size(); ++i) receptive *= s[i];
    fan_in = s[s.size() - 2] * receptive;
    fan_out = s.back() * receptive;
  }
}

}  // namespace

Tensor initial_weight(const std::string& key, const WeightSpec& spec, uint64_t seed) {
  for (Dim d : spec.shape)
    if (d < 0)
      throw Error(
          fmt::format("cannot initialise a weight of unknown shape {}", format_shape(spec.shape)))
          .tensor(key);
  Tensor t(DType::f32, spec.shape);
  SplitMix64 rng(key_seed(key, seed));
  float* p = t.mutable_data<float>();
  switch (spec.init) {
    case Init::zeros:
      break;
    case Init::ones:
      std::fill(p, p + t.size(), 1.0f);
      break;
    case Init::glorot_uniform: {
      int64_t fan_in = spec.fan_in, fan_out = spec.fan_out;
      if (fan_in + fan_out <= 0) keras_fans(spec.shape, fan_in, fan_out);
      double limit = std::sqrt(6.0 / static_cast<double>(std::max<int64_t>(1, fan_in + fan_out)));
      fill_uniform(t, rng, -limit, limit);
      break;
    }
    case Init::orthogonal:
      fill_orthogonal(t, rng, key);
      break;
    case Init::uniform_embedding:
      fill_uniform(t, rng, -0.05, 0.05);
      break;
    case Init::lstm_bias: {
      if (t.size() % 4 != 0)
        throw Error(fmt::format("an LSTM bias needs a size divisible by 4 (four gates), found {}",
                                format_shape(spec.shape)))
            .tensor(key);
      std::fill(p + t.size() / 4, p + t.size() / 2, 1.0f);  // gates i, f, c, o: forget = 1
      break;
    }
  }
  return t;
}

WeightStore WeightStore::initialize(const SpecList& specs, uint64_t seed) {
  WeightStore store;
  for (const auto& [key, spec] : specs) {
    try {
      store.set(key, initial_weight(key, spec, seed));
    } catch (const std::bad_alloc&) {
      throw Error(fmt::format("out of memory creating weight '{}' of shape {} ({} bytes)", key,
                              format_shape(spec.shape),
                              tensor_bytes_within_limit(spec.shape, DType::f32).value_or(-1)))
          .tensor(key)
          .hint("the graph's weights do not fit into this machine's memory");
    }
  }
  store.set_source(fmt::format("<init seed {}>", seed));
  return store;
}

}  // namespace fg
