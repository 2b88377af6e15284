// STFT and mel spectrograms against the naive references of tests/reference/audio_reference.hpp,
// the frame counts against Keras's documented and tested shapes, and a sine's mel peak.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"
#include "tests/data/test_audio_files.hpp"
#include "tests/reference/audio_reference.hpp"

namespace fg::test {
namespace {

AudioPreprocessing spectrogram_config(AudioFeatures features, int64_t frame_length,
                                      int64_t frame_step, int64_t fft, const std::string& window,
                                      bool log) {
  AudioPreprocessing c;
  c.features = features;
  c.frame_length = frame_length;
  c.frame_step = frame_step;
  c.fft_length = fft;
  c.window = window;
  c.log = log;
  return c;
}

TEST_CASE("spectrogram geometry: Keras's documented and tested shapes") {
  // keras.layers.STFTSpectrogram docstring: 160000 samples, frame 256, step 128, fft 512,
  // padding "valid" -> (1249, 257)
  AudioPreprocessing stft = spectrogram_config(AudioFeatures::stft, 256, 128, 512, "hann", true);
  CHECK(spectrogram_frames(stft, 160000) == 1249);
  CHECK(spectrogram_bins(stft) == 257);
  CHECK(spectrogram_frames(stft, 255) == 0);
  CHECK(spectrogram_frames(stft, 256) == 1);
  CHECK(spectrogram_frames(stft, kDynamic) == kDynamic);
  // keras mel_spectrogram_test.py: (16000, stride 128, fft 2048) -> 126 frames, (16001) -> 126,
  // (8000, stride 64, fft 512) -> 126; the docstring: (16000, stride 256, fft 2048) -> 63
  AudioPreprocessing mel = spectrogram_config(AudioFeatures::mel, 2048, 128, 2048, "hann", true);
  mel.n_mels = 80;
  CHECK(spectrogram_frames(mel, 16000) == 126);
  CHECK(spectrogram_frames(mel, 16001) == 126);
  CHECK(spectrogram_bins(mel) == 80);
  mel.frame_step = 256;
  CHECK(spectrogram_frames(mel, 16000) == 63);
  mel.frame_length = mel.fft_length = 512;
  mel.frame_step = 64;
  CHECK(spectrogram_frames(mel, 8000) == 126);
}

void check_rows(const std::vector<float>& got, const std::vector<std::vector<double>>& want,
                double atol, double rtol) {
  REQUIRE(!want.empty());
  const size_t bins = want[0].size();
  REQUIRE(got.size() == want.size() * bins);
  int failures = 0;
  for (size_t t = 0; t < want.size(); ++t)
    for (size_t k = 0; k < bins; ++k) {
      const double g = got[t * bins + k], w = want[t][k];
      if (std::fabs(g - w) > atol + rtol * std::fabs(w) && failures++ < 5)
        FAIL_CHECK("frame " << t << " bin " << k << ": got " << g << ", want " << w);
    }
  CHECK(failures == 0);
}

TEST_CASE("stft spectrogram: odd frames against a naive DFT (Keras STFTSpectrogram)") {
  const std::vector<float> x = noise(1001, 3);
  for (int64_t frame_length : {127, 128})
    for (int64_t fft : {128, 256})
      for (const std::string window : {"hann", "hamming", "none"})
        for (bool log : {false, true}) {
          CAPTURE(frame_length);
          CAPTURE(fft);
          CAPTURE(window);
          CAPTURE(log);
          const AudioPreprocessing c =
              spectrogram_config(AudioFeatures::stft, frame_length, 31, fft, window, log);
          const auto want = reference::stft(x, frame_length, 31, fft, window, log);
          CHECK(static_cast<int64_t>(want.size()) == spectrogram_frames(c, 1001));
          // float FFT: magnitudes to 1e-4 relative; logs to 1e-3 (small magnitudes)
          check_rows(stft_spectrogram(x, c), want, log ? 2e-3 : 1e-4, 1e-4);
        }
}

TEST_CASE("mel filterbank: the HTK triangles of tf.signal / Keras") {
  struct Case {
    int64_t sample_rate, fft, mels;
    double min_hz, max_hz;
  };
  // our defaults (max_freq 0 = sample_rate / 2), and tf.signal's defaults with odd sizes
  for (const Case& k : {Case{16000, 512, 64, 20.0, 0.0}, Case{8000, 256, 20, 125.0, 3800.0},
                        Case{22050, 254, 13, 0.0, 11025.0}}) {
    CAPTURE(k.fft);
    AudioPreprocessing c = spectrogram_config(AudioFeatures::mel, k.fft, 64, k.fft, "hann", true);
    c.sample_rate = k.sample_rate;
    c.n_mels = k.mels;
    c.min_freq = k.min_hz;
    c.max_freq = k.max_hz;
    const std::vector<float> got = mel_weight_matrix(c);
    const double top = k.max_hz > 0 ? k.max_hz : k.sample_rate / 2;
    check_rows(got, reference::mel_matrix(k.mels, k.fft / 2 + 1, k.sample_rate, k.min_hz, top),
               1e-5, 0.0);
  }
}

TEST_CASE("mel spectrogram: against the naive Keras MelSpectrogram") {
  const std::vector<float> x = noise(1000, 11);
  for (const std::string window : {"hann", "hamming", "none"})
    for (bool log : {false, true}) {
      CAPTURE(window);
      CAPTURE(log);
      AudioPreprocessing c = spectrogram_config(AudioFeatures::mel, 127, 64, 256, window, log);
      c.sample_rate = 16000;
      c.n_mels = 13;
      c.min_freq = 20.0;
      const auto want =
          reference::mel_spectrogram(x, 127, 64, 256, window, 16000, 13, 20.0, 8000.0, log);
      CHECK(static_cast<int64_t>(want.size()) == spectrogram_frames(c, 1000));
      check_rows(mel_spectrogram(x, c), want, log ? 1e-3 : 1e-5, 1e-4);
    }
}

TEST_CASE("mel spectrogram: silence then a tone, floored 80 dB below the sample's peak") {
  std::vector<float> x(2000, 0.0f);
  const std::vector<float> tone = sine(1000, 700.0, 16000.0, 0.9);
  std::copy(tone.begin(), tone.end(), x.begin() + 1000);
  AudioPreprocessing c = spectrogram_config(AudioFeatures::mel, 200, 100, 256, "hann", true);
  c.sample_rate = 16000;
  c.n_mels = 16;
  const auto want =
      reference::mel_spectrogram(x, 200, 100, 256, "hann", 16000, 16, 20.0, 8000.0, true);
  double top = -1e300, bottom = 1e300;
  for (const auto& row : want)
    for (double v : row) top = std::max(top, v), bottom = std::min(bottom, v);
  REQUIRE(bottom == doctest::Approx(top - 80.0));  // the floor is in effect
  check_rows(mel_spectrogram(x, c), want, 1e-3, 1e-4);
}

TEST_CASE("mel spectrogram: a 1 kHz sine peaks in the mel band centred nearest 1 kHz") {
  AudioPreprocessing c = spectrogram_config(AudioFeatures::mel, 400, 160, 512, "hann", true);
  c.sample_rate = 16000;
  c.n_mels = 40;
  c.min_freq = 20.0;
  const std::vector<float> x = sine(4000, 1000.0, 16000.0, 0.5);
  const std::vector<float> mel = mel_spectrogram(x, c);
  // the band centres, from the HTK formula
  const double lo = reference::hz_to_mel(20.0), hi = reference::hz_to_mel(8000.0);
  int64_t expected = 0;
  double best = 1e300;
  for (int64_t b = 0; b < 40; ++b) {
    const double centre = lo + (hi - lo) * (b + 1) / 41.0;
    if (std::fabs(centre - reference::hz_to_mel(1000.0)) < best) {
      best = std::fabs(centre - reference::hz_to_mel(1000.0));
      expected = b;
    }
  }
  const int64_t frames = spectrogram_frames(c, 4000);
  for (int64_t t = 2; t < frames - 2; ++t) {
    const auto row = mel.begin() + t * 40;
    CHECK(std::max_element(row, row + 40) - row == expected);
  }
}

TEST_CASE("spectrograms: the same numbers from concurrent threads (the FFTW plan cache)") {
  const std::vector<float> x = noise(3000, 21);
  const std::vector<int64_t> ffts = {64, 128, 256, 512, 1024, 96};
  std::vector<std::vector<float>> serial, parallel(ffts.size());
  for (int64_t fft : ffts)
    serial.push_back(
        stft_spectrogram(x, spectrogram_config(AudioFeatures::stft, 60, 17, fft, "hann", true)));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ffts.size(); ++i)
    threads.emplace_back([&, i] {
      parallel[i] = stft_spectrogram(
          x, spectrogram_config(AudioFeatures::stft, 60, 17, ffts[i] * 2, "hann", true));
      parallel[i] = stft_spectrogram(
          x, spectrogram_config(AudioFeatures::stft, 60, 17, ffts[i], "hann", true));
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < ffts.size(); ++i) CHECK(parallel[i] == serial[i]);
}

TEST_CASE("mel spectrogram: clips shorter than the reflect padding are reflected repeatedly") {
  AudioPreprocessing c = spectrogram_config(AudioFeatures::mel, 200, 100, 256, "hann", false);
  c.sample_rate = 16000;
  c.n_mels = 8;
  for (int64_t n : {1, 2, 5, 128}) {
    CAPTURE(n);
    const std::vector<float> mel = mel_spectrogram(noise(n, 3), c);
    CHECK(static_cast<int64_t>(mel.size()) == (n / 100 + 1) * 8);
    for (float v : mel) CHECK(std::isfinite(v));
  }
  // one sample: the padded signal is that sample everywhere (numpy's pad([v], 128, "reflect"))
  AudioPreprocessing flat = c;
  flat.window = "none";
  const std::vector<float> one = mel_spectrogram({0.5f}, flat);
  const auto want = reference::mel_spectrogram(std::vector<float>(257, 0.5f), 200, 100, 256, "none",
                                               16000, 8, 20.0, 8000.0, false);
  check_rows(one, {want[0]}, 1e-6, 1e-4);
}

TEST_CASE("spectrograms: bad settings are errors") {
  const std::vector<float> x = noise(500, 1);
  CHECK_THROWS_AS(
      stft_spectrogram(x, spectrogram_config(AudioFeatures::stft, 100, 50, 127, "hann", true)),
      Error);
  CHECK_THROWS_AS(
      stft_spectrogram(x, spectrogram_config(AudioFeatures::stft, 300, 50, 256, "hann", true)),
      Error);
  CHECK_THROWS_AS(
      mel_spectrogram(x, spectrogram_config(AudioFeatures::mel, 100, 0, 256, "hann", true)), Error);
  CHECK_THROWS_AS(
      mel_spectrogram(x, spectrogram_config(AudioFeatures::mel, 100, 50, 256, "kaiser", true)),
      Error);
  AudioPreprocessing c = spectrogram_config(AudioFeatures::mel, 100, 50, 256, "hann", true);
  c.min_freq = 9000.0;  // above sample_rate / 2
  CHECK_THROWS_AS(mel_spectrogram(x, c), Error);
}

}  // namespace
}  // namespace fg::test
