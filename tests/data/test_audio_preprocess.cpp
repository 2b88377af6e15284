// The whole audio pipeline for one file: decode, down-mix, resample, cut / pad, normalize,
// features, and its errors naming the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"
#include "tests/data/test_audio_files.hpp"

namespace fg::test {
namespace {

// A stereo float WAV: left = values, right = values / 2.
std::string stereo_file(const TempDir& dir, const std::vector<float>& values, int rate) {
  std::vector<float> interleaved;
  for (float v : values) {
    interleaved.push_back(v);
    interleaved.push_back(v / 2);
  }
  const std::string path = dir.file("stereo.wav");
  write_float_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, 2, interleaved);
  return path;
}

TEST_CASE("preprocess audio: keeps length and channels without max_length and mono") {
  TempDir dir;
  const std::vector<float> values = noise(1013, 4);
  const std::string path = stereo_file(dir, values, 16000);
  AudioPreprocessing c;
  c.mono = false;
  std::vector<float> out;
  Dims shape;
  preprocess_audio_file(path, c, out, shape);
  CHECK(shape == Dims{1013, 2});
  REQUIRE(out.size() == 2026);
  CHECK(out[2 * 1012] == values[1012]);
  CHECK(out[2 * 1012 + 1] == values[1012] / 2);
}

TEST_CASE("preprocess audio: mono, padding with zeros at the end, truncation keeps the start") {
  TempDir dir;
  const std::vector<float> values = noise(1013, 4);
  const std::string path = stereo_file(dir, values, 16000);
  AudioPreprocessing c;
  c.max_length = 1500;
  std::vector<float> out;
  Dims shape;
  preprocess_audio_file(path, c, out, shape);
  CHECK(shape == Dims{1500, 1});
  REQUIRE(out.size() == 1500);
  for (int i = 0; i < 1013; ++i) REQUIRE(out[i] == static_cast<float>(0.75 * values[i]));
  for (int i = 1013; i < 1500; ++i) REQUIRE(out[i] == 0.0f);
  c.max_length = 7;
  preprocess_audio_file(path, c, out, shape);
  CHECK(shape == Dims{7, 1});
  for (int i = 0; i < 7; ++i) CHECK(out[i] == static_cast<float>(0.75 * values[i]));
}

TEST_CASE("preprocess audio: resampling to the configured rate, then peak normalization") {
  TempDir dir;
  const std::string path = stereo_file(dir, sine(11025, 440.0, 44100.0, 0.4), 44100);
  AudioPreprocessing c;  // 16000 Hz, mono: mean = 0.75 * 0.4 = 0.3 peak
  c.normalize = AudioNormalize::peak;
  std::vector<float> out;
  Dims shape;
  preprocess_audio_file(path, c, out, shape);
  CHECK(std::abs(shape[0] - 4000) <= 1);
  CHECK(shape[1] == 1);
  float peak = 0.0f;
  for (float v : out) peak = std::max(peak, std::fabs(v));
  CHECK(peak == 1.0f);
  // the normalized sine at 440 Hz, 16 kHz, amplitude 1, away from the edges
  double worst = 0.0;
  for (int64_t f = 500; f < 3500; ++f)
    worst = std::max(worst, std::fabs(out[f] - std::sin(2.0 * kTestPi * 440.0 * f / 16000.0)));
  CHECK(worst < 1e-3);
}

TEST_CASE("preprocess audio: peak normalization leaves silence alone") {
  std::vector<float> silence(9, 0.0f);
  normalize_peak(silence);
  CHECK(silence == std::vector<float>(9, 0.0f));
  std::vector<float> v = {0.25f, -0.5f, 0.125f};
  normalize_peak(v);
  CHECK(v == std::vector<float>{0.5f, -1.0f, 0.25f});
}

TEST_CASE("preprocess audio: features give [frames, bins]") {
  TempDir dir;
  const std::string path = stereo_file(dir, noise(3001, 8), 16000);
  AudioPreprocessing c;
  c.max_length = 4000;
  c.features = AudioFeatures::mel;
  std::vector<float> out;
  Dims shape;
  preprocess_audio_file(path, c, out, shape);
  CHECK(shape == Dims{spectrogram_frames(c, 4000), 64});
  CHECK(shape[0] == 26);  // 4000 / 160 + 1
  CHECK(out.size() == static_cast<size_t>(shape[0] * shape[1]));
  c.features = AudioFeatures::stft;
  preprocess_audio_file(path, c, out, shape);
  CHECK(shape == Dims{(4000 - 400) / 160 + 1, 257});
  CHECK(out.size() == static_cast<size_t>(shape[0] * shape[1]));
}

TEST_CASE("preprocess audio: errors name the file") {
  TempDir dir;
  std::vector<float> out;
  Dims shape;
  AudioPreprocessing c;
  auto message = [&](const std::string& path) {
    try {
      preprocess_audio_file(path, c, out, shape);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string missing = dir.file("nope.wav");
  CHECK(message(missing).find(missing) != std::string::npos);
  const std::string silent = dir.file("silent.wav");
  write_short_file(silent, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, {});
  CHECK(message(silent).find("no samples") != std::string::npos);
  // too short for one stft frame
  const std::string tiny = stereo_file(dir, noise(50, 1), 16000);
  c.features = AudioFeatures::stft;
  const std::string m = message(tiny);
  CHECK(m.find(tiny) != std::string::npos);
  CHECK(m.find("50 samples") != std::string::npos);
  // features need mono
  c.mono = false;
  c.max_length = 1000;
  CHECK(message(tiny).find("mono") != std::string::npos);
}

}  // namespace
}  // namespace fg::test
