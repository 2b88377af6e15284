// Naive references for the spectrograms, in double, written from the Keras 3 definitions
// (keras.layers.STFTSpectrogram, keras.layers.MelSpectrogram with keras.ops.stft and
// linear_to_mel_weight_matrix) and not from engine/data/spectrogram.cpp: an O(n^2) DFT, the
// scipy windows, numpy's "reflect" padding built as an array, and the HTK mel scale in its
// 2595 log10 form.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fg::reference {

constexpr double kRefPi = 3.14159265358979323846;

// scipy.signal.get_window("hann" | "hamming", length, fftbins=periodic); "none": ones.
inline std::vector<double> window(const std::string& kind, int64_t length, bool periodic) {
  std::vector<double> w(static_cast<size_t>(length), 1.0);
  if (kind == "none" || length == 1) return w;
  // the periodic window is the symmetric one of length + 1 without its last point
  const int64_t m = periodic ? length + 1 : length;
  for (int64_t n = 0; n < length; ++n) {
    const double c = std::cos(2.0 * kRefPi * n / (m - 1));
    w[n] = kind == "hann" ? 0.5 * (1.0 - c) : 0.54 - 0.46 * c;
  }
  return w;
}

// |DFT_fft(frame zero-padded to fft)[k]|^2 for k = 0 .. fft / 2.
inline std::vector<double> dft_power(const std::vector<double>& frame, int64_t fft) {
  std::vector<double> power(static_cast<size_t>(fft / 2 + 1));
  for (int64_t k = 0; k <= fft / 2; ++k) {
    double re = 0.0, im = 0.0;
    for (size_t n = 0; n < frame.size(); ++n) {
      const double angle = -2.0 * kRefPi * static_cast<double>(k) * static_cast<double>(n) /
                           static_cast<double>(fft);
      re += frame[n] * std::cos(angle);
      im += frame[n] * std::sin(angle);
    }
    power[k] = re * re + im * im;
  }
  return power;
}

// keras.layers.STFTSpectrogram(mode = log ? "log" : "magnitude", frame_length, frame_step,
// fft_length, window, periodic=False, scaling="density", padding="valid"), [frames, bins].
inline std::vector<std::vector<double>> stft(const std::vector<float>& x, int64_t frame_length,
                                             int64_t frame_step, int64_t fft,
                                             const std::string& kind, bool log) {
  const std::vector<double> w = window(kind, frame_length, false);
  double norm = 1.0;
  if (kind != "none") {
    double s = 0.0;
    for (double v : w) s += v * v;
    norm = std::sqrt(s);
  }
  std::vector<std::vector<double>> out;
  for (int64_t start = 0; start + frame_length <= static_cast<int64_t>(x.size());
       start += frame_step) {
    std::vector<double> frame(static_cast<size_t>(frame_length));
    for (int64_t n = 0; n < frame_length; ++n) frame[n] = x[start + n] * w[n] / norm;
    std::vector<double> row = dft_power(frame, fft);
    for (double& v : row) {
      const double magnitude = std::sqrt(std::max(v, 1e-7));
      v = log ? std::log(std::max(magnitude, 1e-7)) : magnitude;
    }
    out.push_back(row);
  }
  return out;
}

inline double hz_to_mel(double hz) {
  return 2595.0 * std::log10(1.0 + hz / 700.0);
}

// linear_to_mel_weight_matrix: [bins][mels], bin k at k * (sample_rate / 2) / (bins - 1) Hz,
// triangles over num_mel_bins + 2 edges evenly spaced in mel, the DC row zero.
inline std::vector<std::vector<double>> mel_matrix(int64_t mels, int64_t bins, double rate,
                                                   double lower_hz, double upper_hz) {
  std::vector<double> edges(static_cast<size_t>(mels + 2));
  for (int64_t e = 0; e < mels + 2; ++e)
    edges[e] = hz_to_mel(lower_hz) + (hz_to_mel(upper_hz) - hz_to_mel(lower_hz)) * e / (mels + 1);
  std::vector<std::vector<double>> m(static_cast<size_t>(bins),
                                     std::vector<double>(static_cast<size_t>(mels), 0.0));
  for (int64_t k = 1; k < bins; ++k) {
    const double mel = hz_to_mel(rate / 2.0 * k / (bins - 1));
    for (int64_t b = 0; b < mels; ++b) {
      const double left = edges[b], centre = edges[b + 1], right = edges[b + 2];
      double v = 0.0;
      if (mel > left && mel <= centre) v = (mel - left) / (centre - left);
      if (mel > centre && mel < right) v = (right - mel) / (right - centre);
      m[k][b] = v;
    }
  }
  return m;
}

// numpy.pad(x, (pad, pad), mode="reflect") for pad < x.size().
inline std::vector<double> reflect_pad(const std::vector<float>& x, int64_t pad) {
  std::vector<double> out;
  for (int64_t i = pad; i >= 1; --i) out.push_back(x[i]);
  out.insert(out.end(), x.begin(), x.end());
  const auto n = static_cast<int64_t>(x.size());
  for (int64_t i = 1; i <= pad; ++i) out.push_back(x[n - 1 - i]);
  return out;
}

// keras.layers.MelSpectrogram(fft_length, sequence_stride, sequence_length, window,
// sampling_rate, num_mel_bins, min_freq, max_freq, power_to_db=log), transposed to
// [frames, mels].
inline std::vector<std::vector<double>> mel_spectrogram(const std::vector<float>& x,
                                                        int64_t frame_length, int64_t stride,
                                                        int64_t fft, const std::string& kind,
                                                        double rate, int64_t mels, double min_hz,
                                                        double max_hz, bool log) {
  const std::vector<double> padded = reflect_pad(x, fft / 2);
  // keras.ops.stft: the window padded to fft_length, centred; no window: all ones
  std::vector<double> w(static_cast<size_t>(fft), 0.0);
  if (kind == "none") {
    std::fill(w.begin(), w.end(), 1.0);
  } else {
    const std::vector<double> inner = window(kind, frame_length, true);
    std::copy(inner.begin(), inner.end(), w.begin() + (fft - frame_length) / 2);
  }
  const auto matrix = mel_matrix(mels, fft / 2 + 1, rate, min_hz, max_hz);
  std::vector<std::vector<double>> out;
  for (int64_t start = 0; start + fft <= static_cast<int64_t>(padded.size()); start += stride) {
    std::vector<double> frame(static_cast<size_t>(fft));
    for (int64_t n = 0; n < fft; ++n) frame[n] = padded[start + n] * w[n];
    const std::vector<double> power = dft_power(frame, fft);
    std::vector<double> row(static_cast<size_t>(mels), 0.0);
    for (size_t k = 0; k < power.size(); ++k)
      for (int64_t b = 0; b < mels; ++b) row[b] += power[k] * matrix[k][b];
    out.push_back(row);
  }
  if (!log) return out;
  double top = -1e300;
  for (auto& row : out)
    for (double& v : row) {
      v = 10.0 * std::log10(std::max(v, 1e-10));  // - 10 log10(ref_power = 1)
      top = std::max(top, v);
    }
  for (auto& row : out)
    for (double& v : row) v = std::max(v, top - 80.0);  // top_db
  return out;
}

}  // namespace fg::reference
