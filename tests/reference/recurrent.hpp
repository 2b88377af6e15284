// Naive references for the recurrent and embedding layers, written from the Keras formulas:
// plain loops, double accumulation, no oneDNN. Data is row-major in Keras shapes.
//
// LSTM (kernel [F, 4u], recurrent [u, 4u], bias [4u], gate order i, f, c, o):
//   i = ra(x Wi + h Ui + bi)   f = ra(x Wf + h Uf + bf)   o = ra(x Wo + h Uo + bo)
//   c = f * c + i * a(x Wc + h Uc + bc)                      h = o * a(c)
// GRU (gate order z, r, h; reset_after: bias [2, 3u] = input row, recurrent row):
//   reset_after=True:   z = ra(x Wz + bz_in + h Uz + bz_rec)   r likewise
//                       hh = a(x Wh + bh_in + r * (h Uh + bh_rec))
//   reset_after=False:  z = ra(x Wz + h Uz + bz)  r likewise   hh = a(x Wh + (r * h) Uh + bh)
//   h = z * h + (1 - z) * hh
// SimpleRNN (kernel [F, u], recurrent [u, u], bias [u]):  h = a(x W + h U + b)
// Masks (Keras): a masked step keeps the state; with return_sequences its output repeats the
// previous output (zeros before the first valid step). zero_output_for_mask (Keras's backend
// rnn, which Bidirectional sets with return_sequences): a masked step outputs zeros instead;
// without return_sequences the output (the last step's) is zeros when the last step is masked.
// The data pointers are float (inference tests) or double (RnnArgsT<double>: the naive
// forwards of the gradient checks, which take finite differences of it).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fg::ref {

inline double rnn_activation(const std::string& name, double x) {
  const double softplus = x > 30 ? x : std::log1p(std::exp(x));
  if (name == "selu")
    return 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * (std::exp(x) - 1.0));
  if (name == "softplus") return softplus;
  if (name == "relu6") return std::fmin(std::fmax(x, 0.0), 6.0);
  if (name == "silu") return x / (1.0 + std::exp(-x));
  if (name == "gelu") return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  if (name == "gelu_approximate")
    return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  if (name == "mish") return x * std::tanh(softplus);
  if (name == "exponential") return std::exp(x);
  if (name == "tanh") return std::tanh(x);
  if (name == "sigmoid") return 1.0 / (1.0 + std::exp(-x));
  if (name == "linear") return x;
  if (name == "relu") return x > 0 ? x : 0.0;
  if (name == "hard_sigmoid") return std::fmin(std::fmax(0.2 * x + 0.5, 0.0), 1.0);
  if (name == "hard_sigmoid_keras3") return std::fmin(std::fmax(x + 3.0, 0.0), 6.0) / 6.0;
  if (name == "elu") return x > 0 ? x : std::exp(x) - 1.0;
  if (name == "softsign") return x / (1.0 + std::fabs(x));
  if (name == "swish") return x / (1.0 + std::exp(-x));
  throw std::runtime_error("reference: unknown activation " + name);
}

template <typename T>
struct RnnArgsT {
  bool lstm = true;         // else GRU
  bool simple_rnn = false;  // SimpleRNN (then `lstm` and `reset_after` are ignored)
  bool zero_output_for_mask = false;
  int64_t batch = 1, steps = 1, features = 1, units = 1;
  bool return_sequences = false;
  bool reset_after = true;  // GRU
  std::string activation = "tanh", recurrent_activation = "sigmoid";
  const T* x = nullptr;           // [B, T, F]
  const T* kernel = nullptr;      // [F, G*u]
  const T* recurrent = nullptr;   // [u, G*u]
  const T* bias = nullptr;        // LSTM [4u]; GRU [2, 3u] or [3u]; nullptr = no bias
  const uint8_t* mask = nullptr;  // [B, T] or nullptr
};
using RnnArgs = RnnArgsT<float>;

// Returns [B, u] or [B, T, u].
template <typename T>
std::vector<double> rnn(const RnnArgsT<T>& a) {
  const int64_t U = a.units, G = a.simple_rnn ? 1 : a.lstm ? 4 : 3, GU = G * U, F = a.features;
  auto act = [&](double v) { return rnn_activation(a.activation, v); };
  auto ract = [&](double v) { return rnn_activation(a.recurrent_activation, v); };
  std::vector<double> out(static_cast<size_t>(a.batch * (a.return_sequences ? a.steps : 1) * U),
                          0.0);
  for (int64_t b = 0; b < a.batch; ++b) {
    std::vector<double> h(U, 0.0), c(U, 0.0);
    for (int64_t t = 0; t < a.steps; ++t) {
      const bool valid = a.mask == nullptr || a.mask[b * a.steps + t] != 0;
      if (valid) {
        const T* x = a.x + (b * a.steps + t) * F;
        // xw[g] = x W[:, g] + input bias; hu[g] = h U[:, g] (+ recurrent bias for reset_after)
        std::vector<double> xw(GU, 0.0), hu(GU, 0.0);
        for (int64_t g = 0; g < GU; ++g) {
          double s = 0;
          for (int64_t f = 0; f < F; ++f) s += double(x[f]) * double(a.kernel[f * GU + g]);
          if (a.bias) s += a.bias[g];
          xw[g] = s;
          double r = 0;
          for (int64_t k = 0; k < U; ++k) r += h[k] * double(a.recurrent[k * GU + g]);
          if (a.bias && !a.simple_rnn && !a.lstm && a.reset_after) r += a.bias[GU + g];
          hu[g] = r;
        }
        std::vector<double> nh(U);
        if (a.simple_rnn) {
          for (int64_t j = 0; j < U; ++j) nh[j] = act(xw[j] + hu[j]);
        } else if (a.lstm) {
          for (int64_t j = 0; j < U; ++j) {
            double i = ract(xw[j] + hu[j]), f = ract(xw[U + j] + hu[U + j]);
            double cc = act(xw[2 * U + j] + hu[2 * U + j]), o = ract(xw[3 * U + j] + hu[3 * U + j]);
            c[j] = f * c[j] + i * cc;
            nh[j] = o * act(c[j]);
          }
        } else if (a.reset_after) {
          for (int64_t j = 0; j < U; ++j) {
            double z = ract(xw[j] + hu[j]), r = ract(xw[U + j] + hu[U + j]);
            double hh = act(xw[2 * U + j] + r * hu[2 * U + j]);
            nh[j] = z * h[j] + (1 - z) * hh;
          }
        } else {
          std::vector<double> z(U), rh(U);
          for (int64_t j = 0; j < U; ++j) {
            z[j] = ract(xw[j] + hu[j]);
            rh[j] = ract(xw[U + j] + hu[U + j]) * h[j];
          }
          for (int64_t j = 0; j < U; ++j) {
            double s = xw[2 * U + j];
            for (int64_t k = 0; k < U; ++k) s += rh[k] * double(a.recurrent[k * GU + 2 * U + j]);
            nh[j] = z[j] * h[j] + (1 - z[j]) * act(s);
          }
        }
        h = nh;
      }
      const bool zeroed = a.zero_output_for_mask && !valid;
      if (a.return_sequences)
        for (int64_t j = 0; j < U; ++j) out[(b * a.steps + t) * U + j] = zeroed ? 0.0 : h[j];
      if (!a.return_sequences && t == a.steps - 1)
        for (int64_t j = 0; j < U; ++j) out[b * U + j] = zeroed ? 0.0 : h[j];
    }
  }
  return out;
}

// Embedding: ids [n] (all in range), table [input_dim, output_dim] -> [n, output_dim].
template <typename T>
std::vector<double> embedding(const std::vector<int>& ids, const T* table, int64_t output_dim) {
  std::vector<double> out;
  out.reserve(ids.size() * static_cast<size_t>(output_dim));
  for (int id : ids)
    for (int64_t j = 0; j < output_dim; ++j) out.push_back(table[id * output_dim + j]);
  return out;
}

}  // namespace fg::ref
