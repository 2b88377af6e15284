// Resampling (libsamplerate) keeps a sine's frequency, amplitude and phase; down-mixing is the
// mean of the channels.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"
#include "tests/data/test_audio_files.hpp"

namespace fg::test {
namespace {

DecodedAudio make_audio(int64_t rate, int64_t channels, std::vector<float> samples) {
  DecodedAudio a;
  a.sample_rate = rate;
  a.channels = channels;
  a.samples = std::move(samples);
  return a;
}

// Sign changes of channel `c` in frames [begin, end).
int64_t zero_crossings(const DecodedAudio& a, int64_t c, int64_t begin, int64_t end) {
  int64_t n = 0;
  for (int64_t f = begin + 1; f < end; ++f)
    if ((a.samples[(f - 1) * a.channels + c] < 0) != (a.samples[f * a.channels + c] < 0)) ++n;
  return n;
}

// Largest |x - amplitude sin(2 pi hertz t / rate)| of channel c over frames [begin, end).
double max_deviation(const DecodedAudio& a, int64_t c, double hertz, double amplitude,
                     int64_t begin, int64_t end) {
  double worst = 0.0;
  for (int64_t f = begin; f < end; ++f) {
    const double want = amplitude * std::sin(2.0 * kTestPi * hertz * f / a.sample_rate);
    worst = std::max(worst, std::fabs(a.samples[f * a.channels + c] - want));
  }
  return worst;
}

TEST_CASE("resample: a 1 kHz sine from 44100 Hz to 16000 Hz keeps frequency and amplitude") {
  const DecodedAudio src = make_audio(44100, 1, sine(11025, 1000.0, 44100.0, 0.5));
  const DecodedAudio out = resample_audio(src, 16000);
  CHECK(out.sample_rate == 16000);
  CHECK(out.channels == 1);
  CHECK(std::abs(out.frames() - 4000) <= 1);
  // away from the edges (the filter's transients): 0.1875 s of 1 kHz = 187.5 periods
  CHECK(std::abs(zero_crossings(out, 0, 500, 3500) - 375) <= 1);
  CHECK(max_deviation(out, 0, 1000.0, 0.5, 500, 3500) < 1e-5);
}

TEST_CASE("resample: band-limited: 7 kHz passes, 9 kHz (above the new Nyquist) is removed") {
  const DecodedAudio pass =
      resample_audio(make_audio(44100, 1, sine(11025, 7000.0, 44100.0, 0.5)), 16000);
  CHECK(max_deviation(pass, 0, 7000.0, 0.5, 500, 3500) < 1e-3);
  const DecodedAudio stop =
      resample_audio(make_audio(44100, 1, sine(11025, 9000.0, 44100.0, 0.5)), 16000);
  CHECK(max_deviation(stop, 0, 0.0, 0.0, 500, 3500) < 1e-3);  // no alias at 7 kHz
}

TEST_CASE("resample: stereo upsampling 8000 -> 22050 Hz keeps each channel") {
  std::vector<float> left = sine(2003, 500.0, 8000.0, 0.8),
                     right = sine(2003, 1500.0, 8000.0, 0.25);
  std::vector<float> interleaved;
  for (size_t i = 0; i < left.size(); ++i) {
    interleaved.push_back(left[i]);
    interleaved.push_back(right[i]);
  }
  const DecodedAudio out = resample_audio(make_audio(8000, 2, interleaved), 22050);
  CHECK(out.channels == 2);
  CHECK(std::abs(out.frames() - 5521) <= 1);  // 2003 * 22050 / 8000 = 5520.8
  CHECK(max_deviation(out, 0, 500.0, 0.8, 1000, 4500) < 1e-5);
  CHECK(max_deviation(out, 1, 1500.0, 0.25, 1000, 4500) < 1e-5);
}

TEST_CASE("resample: the same rate is a copy; ratios beyond 256 are errors") {
  const DecodedAudio src = make_audio(16000, 1, noise(77, 2));
  CHECK(resample_audio(src, 16000).samples == src.samples);
  CHECK_THROWS_AS(resample_audio(make_audio(10, 1, noise(77, 2)), 16000), Error);
  CHECK_THROWS_AS(resample_audio(src, 0), Error);
}

TEST_CASE("downmix: the mean of the channels") {
  const DecodedAudio stereo = make_audio(8000, 2, {0.5f, -0.25f, 1.0f, 1.0f, -1.0f, 0.0f});
  const DecodedAudio mono = downmix_to_mono(stereo);
  CHECK(mono.channels == 1);
  CHECK(mono.sample_rate == 8000);
  CHECK(mono.samples == std::vector<float>{0.125f, 1.0f, -0.5f});
  const DecodedAudio three = make_audio(8000, 3, {0.3f, 0.6f, 0.9f, -0.3f, 0.0f, 0.0f});
  const DecodedAudio m3 = downmix_to_mono(three);
  REQUIRE(m3.samples.size() == 2);
  CHECK(m3.samples[0] == doctest::Approx(0.6).epsilon(1e-7));
  CHECK(m3.samples[1] == doctest::Approx(-0.1).epsilon(1e-7));
  CHECK(downmix_to_mono(mono).samples == mono.samples);
}

}  // namespace
}  // namespace fg::test
