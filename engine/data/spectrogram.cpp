// STFT magnitude and mel spectrograms with FFTW, as Keras 3's STFTSpectrogram and
// MelSpectrogram layers define them (docs/data.md, "Audio", states both definitions; the frame
// counts are framework/spectrogram_shape.cpp's).
//
// FFTW's planner is not thread safe: plans are made once per FFT length under a mutex, kept for
// the life of the process, and executed with fftwf_execute_dft_r2c on each caller's own arrays
// (the thread-safe new-array interface; the arrays have the planning arrays' alignment).
// FFTW_ESTIMATE keeps the plan, and so every number, the same from run to run.
#include <fftw3.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

constexpr int64_t kMaxFftLength = int64_t{1} << 20;
constexpr int64_t kMaxSpectrogramValues = int64_t{1} << 27;  // 512 MiB of floats
constexpr double kPi = 3.14159265358979323846;
constexpr size_t kAlignment = 64;  // covers every SIMD alignment FFTW checks

// A 64-byte aligned array, zero-filled.
template <typename T>
class AlignedArray {
 public:
  explicit AlignedArray(int64_t n) {
    const size_t bytes =
        (static_cast<size_t>(n) * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<T*>(std::aligned_alloc(kAlignment, bytes));
    if (!data_) throw std::bad_alloc();
    std::fill_n(reinterpret_cast<unsigned char*>(data_), bytes, 0);
  }
  ~AlignedArray() { std::free(data_); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  T* get() const { return data_; }

 private:
  T* data_ = nullptr;
};

// The real-to-complex plans, one per length, made once and destroyed at exit (with FFTW's own
// planner memory, so that leak checkers see nothing left).
class PlanCache {
 public:
  ~PlanCache() {
    for (auto& entry : plans_) fftwf_destroy_plan(entry.second);
    fftwf_cleanup();
  }

  fftwf_plan get(int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(n);
    if (it != plans_.end()) return it->second;
    AlignedArray<float> in(n);
    AlignedArray<fftwf_complex> out(n / 2 + 1);
    fftwf_plan plan =
        fftwf_plan_dft_r2c_1d(static_cast<int>(n), in.get(), out.get(), FFTW_ESTIMATE);
    if (!plan) throw Error(fmt::format("FFTW cannot plan a real FFT of length {}", n));
    plans_.emplace(n, plan);
    return plan;
  }

 private:
  std::mutex mutex_;
  std::map<int64_t, fftwf_plan> plans_;
};

fftwf_plan r2c_plan(int64_t n) {
  static PlanCache cache;
  return cache.get(n);
}

void check_config(const AudioPreprocessing& c, const char* what) {
  auto fail = [&](const std::string& message) {
    return Error(fmt::format("{} spectrogram: {}", what, message));
  };
  if (c.fft_length < 2 || c.fft_length % 2 != 0 || c.fft_length > kMaxFftLength)
    throw fail(fmt::format("fft_length is {}; an even number from 2 to {} is needed", c.fft_length,
                           kMaxFftLength));
  if (c.frame_length < 1 || c.frame_length > c.fft_length)
    throw fail(fmt::format("frame_length is {}; 1 to fft_length ({}) is needed", c.frame_length,
                           c.fft_length));
  if (c.frame_step < 1)
    throw fail(fmt::format("frame_step is {}; at least 1 is needed", c.frame_step));
  if (c.window != "hann" && c.window != "hamming" && c.window != "none")
    throw fail(fmt::format("window '{}' is not one of 'hann', 'hamming', 'none'", c.window));
}

// Keras's windows (scipy.signal.get_window): a + b cos(2 pi n / d) with d = L - 1 (symmetric)
// or L (periodic); a single-point window is 1.
std::vector<float> make_window(const std::string& kind, int64_t length, bool periodic) {
  std::vector<float> w(static_cast<size_t>(length), 1.0f);
  if (kind == "none" || length == 1) return w;
  const double a = kind == "hann" ? 0.5 : 0.54;
  const double denominator = static_cast<double>(periodic ? length : length - 1);
  for (int64_t n = 0; n < length; ++n)
    w[n] = static_cast<float>(a - (1.0 - a) * std::cos(2.0 * kPi * n / denominator));
  return w;
}

// Where each frame's window sits: frame t multiplies sample(t * step + offset + n) by window[n]
// and puts it at position offset + n of the fft_length buffer (the rest is zero).
struct Framing {
  std::vector<float> window;
  int64_t offset = 0;
  int64_t frames = 0;
  int64_t reflect_pad = 0;  // > 0: sample(i) = x[reflect(i - reflect_pad)] (numpy "reflect")
};

int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  int64_t j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

// |X_t[k]|^2 for every frame t and bin k = 0 .. fft_length / 2, row major.
std::vector<float> power_frames(const std::vector<float>& x, const AudioPreprocessing& c,
                                const Framing& framing) {
  const int64_t fft = c.fft_length, bins = fft / 2 + 1, n = static_cast<int64_t>(x.size());
  if (framing.frames * bins > kMaxSpectrogramValues)
    throw Error(fmt::format("the spectrogram would have {} frames of {} bins, more than {} values",
                            framing.frames, bins, kMaxSpectrogramValues));
  if (framing.frames < 1 || n < 1) return {};  // no frame (and nothing to reflect)
  const fftwf_plan plan = r2c_plan(fft);
  AlignedArray<float> in(fft);
  AlignedArray<fftwf_complex> out(bins);
  std::vector<float> power(static_cast<size_t>(framing.frames * bins));
  const auto width = static_cast<int64_t>(framing.window.size());
  // With reflect padding, the padded signal once (not an index computation per sample).
  std::vector<float> padded;
  const float* signal = x.data();
  if (framing.reflect_pad > 0) {
    const int64_t pad = framing.reflect_pad, total = n + 2 * pad;
    padded.resize(static_cast<size_t>(total));
    std::copy(x.begin(), x.end(), padded.begin() + pad);  // the middle, then the two edges
    for (int64_t i = 0; i < pad; ++i) padded[i] = x[reflect_index(i - pad, n)];
    for (int64_t i = pad + n; i < total; ++i) padded[i] = x[reflect_index(i - pad, n)];
    signal = padded.data();
  }
  for (int64_t t = 0; t < framing.frames; ++t) {
    const float* src = signal + t * c.frame_step + framing.offset;
    float* dst = in.get() + framing.offset;
    for (int64_t i = 0; i < width; ++i) dst[i] = src[i] * framing.window[i];
    fftwf_execute_dft_r2c(plan, in.get(), out.get());
    float* row = power.data() + t * bins;
    for (int64_t k = 0; k < bins; ++k) {
      const float re = out.get()[k][0], im = out.get()[k][1];
      row[k] = re * re + im * im;
    }
  }
  return power;
}

float hertz_to_mel(double hertz) {
  return static_cast<float>(1127.0 * std::log1p(hertz / 700.0));
}

}  // namespace

// Keras STFTSpectrogram(mode="log" or "magnitude", periodic=False, scaling="density",
// padding="valid"): |sum_n x[t*step + n] w[n] e^{-2 pi i k n / fft}| / sqrt(sum w^2), floored
// as sqrt(max(power, 1e-7)); log: ln(max(magnitude, 1e-7)).
std::vector<float> stft_spectrogram(const std::vector<float>& mono,
                                    const AudioPreprocessing& config) {
  check_config(config, "stft");
  Framing framing;
  framing.window = make_window(config.window, config.frame_length, /*periodic=*/false);
  framing.frames = spectrogram_frames(config, static_cast<int64_t>(mono.size()));
  std::vector<float> values = power_frames(mono, config, framing);
  double scale = 1.0;  // Keras: no scaling without a window
  if (config.window != "none") {
    double sum_squares = 0.0;
    for (float w : framing.window) sum_squares += static_cast<double>(w) * w;
    scale = 1.0 / sum_squares;
  }
  constexpr float kEpsilon = 1e-7f;  // keras.backend.epsilon()
  for (float& v : values) {
    const float magnitude = std::sqrt(std::max(static_cast<float>(v * scale), kEpsilon));
    v = config.log ? std::log(std::max(magnitude, kEpsilon)) : magnitude;
  }
  return values;
}

std::vector<float> mel_weight_matrix(const AudioPreprocessing& config) {
  const int64_t bins = config.fft_length / 2 + 1, mels = config.n_mels;
  const double max_freq =
      config.max_freq > 0.0 ? config.max_freq : static_cast<double>(config.sample_rate / 2);
  if (mels < 1 || config.sample_rate < 1 || config.min_freq < 0.0 || !(max_freq > config.min_freq))
    throw Error(
        fmt::format("mel spectrogram: n_mels {} must be at least 1 and 0 <= min_freq ({}) "
                    "< max_freq ({}) (sample_rate {})",
                    mels, config.min_freq, max_freq, config.sample_rate));
  const double lower = hertz_to_mel(config.min_freq), upper = hertz_to_mel(max_freq);
  std::vector<float> edges(static_cast<size_t>(mels + 2));
  for (int64_t e = 0; e < mels + 2; ++e)
    edges[e] = static_cast<float>(lower + (upper - lower) * e / static_cast<double>(mels + 1));
  const double nyquist = static_cast<double>(config.sample_rate) / 2.0;
  std::vector<float> weights(static_cast<size_t>(bins * mels), 0.0f);
  for (int64_t k = 1; k < bins; ++k) {  // HTK leaves out the DC bin
    const float mel = hertz_to_mel(nyquist * k / static_cast<double>(bins - 1));
    for (int64_t m = 0; m < mels; ++m) {
      const float rising = (mel - edges[m]) / (edges[m + 1] - edges[m]);
      const float falling = (edges[m + 2] - mel) / (edges[m + 2] - edges[m + 1]);
      weights[k * mels + m] = std::max(0.0f, std::min(rising, falling));
    }
  }
  return weights;
}

// Keras MelSpectrogram(mag_exp=2, min_power=1e-10, ref_power=1, top_db=80): keras.ops.stft
// with center=True (reflect padding by fft_length / 2), a periodic window of frame_length
// centred in each fft_length segment (window "none": all fft_length samples, unweighted), the
// power |X|^2 times the HTK mel matrix; log: 10 log10(max(mel, 1e-10)) floored at the sample's
// maximum minus 80 dB.
std::vector<float> mel_spectrogram(const std::vector<float>& mono,
                                   const AudioPreprocessing& config) {
  check_config(config, "mel");
  // The matrix depends only on these settings: made once per thread while they stay the same.
  thread_local std::vector<float> weights;
  thread_local std::tuple<int64_t, int64_t, int64_t, double, double> weights_key{-1, -1, -1, 0, 0};
  const auto key = std::make_tuple(config.fft_length, config.n_mels, config.sample_rate,
                                   config.min_freq, config.max_freq);
  if (key != weights_key) {
    weights = mel_weight_matrix(config);
    weights_key = key;
  }
  Framing framing;
  const bool windowed = config.window != "none";
  const int64_t width = windowed ? config.frame_length : config.fft_length;
  framing.window = make_window(config.window, width, /*periodic=*/true);
  framing.offset = (config.fft_length - width) / 2;
  framing.frames = spectrogram_frames(config, static_cast<int64_t>(mono.size()));
  framing.reflect_pad = config.fft_length / 2;
  const std::vector<float> power = power_frames(mono, config, framing);
  const int64_t bins = config.fft_length / 2 + 1, mels = config.n_mels;
  std::vector<float> out(static_cast<size_t>(framing.frames * mels), 0.0f);
  // Each mel band sums a short run of bins: per band, its first and last bin with a non-zero
  // weight, summed in a register in ascending bin order (the same additions in the same order
  // as the dense product over every bin, without the zeros).
  std::vector<std::pair<int64_t, int64_t>> runs(static_cast<size_t>(mels), {1, 1});
  for (int64_t m = 0; m < mels; ++m) {
    int64_t first = 1, last = bins;  // HTK leaves out the DC bin
    while (first < bins && weights[first * mels + m] == 0.0f) ++first;
    while (last > first && weights[(last - 1) * mels + m] == 0.0f) --last;
    runs[m] = {first, last};
  }
  for (int64_t t = 0; t < framing.frames; ++t) {
    const float* row = power.data() + t * bins;
    float* dst = out.data() + t * mels;
    for (int64_t m = 0; m < mels; ++m) {
      float sum = 0.0f;
      for (int64_t k = runs[m].first; k < runs[m].second; ++k)
        sum += row[k] * weights[k * mels + m];
      dst[m] = sum;
    }
  }
  if (!config.log) return out;
  constexpr float kMinPower = 1e-10f, kTopDb = 80.0f;
  float top = -1e30f;
  for (float& v : out) {
    v = 10.0f * std::log10(std::max(v, kMinPower));
    top = std::max(top, v);
  }
  for (float& v : out) v = std::max(v, top - kTopDb);
  return out;
}

}  // namespace fg
