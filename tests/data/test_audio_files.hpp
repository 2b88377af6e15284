// Sound files for the audio tests, written by libsndfile itself into a temporary directory.
#pragma once

#include <doctest/doctest.h>
#include <sndfile.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/io/io_test_util.hpp"  // TempDir, write_bytes, read_bytes

namespace fg::test {

constexpr double kTestPi = 3.14159265358979323846;

// `format` is a libsndfile SF_FORMAT_* major | subtype; values are interleaved frames.
inline SNDFILE* open_for_writing(const std::string& path, int format, int rate, int channels) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE_MESSAGE(file != nullptr, sf_strerror(nullptr));
  return file;
}

inline void write_float_file(const std::string& path, int format, int rate, int channels,
                             const std::vector<float>& values) {
  SNDFILE* file = open_for_writing(path, format, rate, channels);
  const sf_count_t frames = static_cast<sf_count_t>(values.size()) / channels;
  CHECK(sf_writef_float(file, values.data(), frames) == frames);
  sf_close(file);
}

inline void write_short_file(const std::string& path, int format, int rate, int channels,
                             const std::vector<short>& values) {
  SNDFILE* file = open_for_writing(path, format, rate, channels);
  const sf_count_t frames = static_cast<sf_count_t>(values.size()) / channels;
  CHECK(sf_writef_short(file, values.data(), frames) == frames);
  sf_close(file);
}

// 32-bit ints; a 24-bit file keeps the top 24 bits.
inline void write_int_file(const std::string& path, int format, int rate, int channels,
                           const std::vector<int>& values) {
  SNDFILE* file = open_for_writing(path, format, rate, channels);
  const sf_count_t frames = static_cast<sf_count_t>(values.size()) / channels;
  CHECK(sf_writef_int(file, values.data(), frames) == frames);
  sf_close(file);
}

inline std::vector<float> sine(int64_t n, double hertz, double rate, double amplitude,
                               double phase = 0.0) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(amplitude * std::sin(2.0 * kTestPi * hertz * i / rate + phase));
  return out;
}

// Deterministic values in [-1, 1) (a small LCG, independent of the code under test).
inline std::vector<float> noise(int64_t n, uint32_t seed) {
  std::vector<float> out(static_cast<size_t>(n));
  uint32_t s = seed * 2654435761u + 1u;
  for (auto& v : out) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>((s >> 8) / 8388608.0 - 1.0);
  }
  return out;
}

}  // namespace fg::test
