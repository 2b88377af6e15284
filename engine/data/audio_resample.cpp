// Resampling with libsamplerate (a band-limited sinc interpolator) and down-mixing to mono.
#include <fmt/format.h>
#include <samplerate.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

// libsamplerate accepts conversion ratios in [1/256, 256] (SRC_MAX_RATIO).
constexpr double kMaxRatio = 256.0;
constexpr int64_t kMaxResampledSamples = int64_t{1} << 31;

}  // namespace

DecodedAudio resample_audio(const DecodedAudio& src, int64_t sample_rate) {
  if (src.sample_rate == sample_rate) return src;
  if (sample_rate < 1 || src.sample_rate < 1 || src.channels < 1)
    throw Error(fmt::format("cannot resample audio of {} Hz and {} channels to {} Hz",
                            src.sample_rate, src.channels, sample_rate));
  const double ratio = static_cast<double>(sample_rate) / static_cast<double>(src.sample_rate);
  if (ratio > kMaxRatio || ratio < 1.0 / kMaxRatio)
    throw Error(
        fmt::format("cannot resample from {} Hz to {} Hz: libsamplerate converts by a "
                    "factor of at most {}",
                    src.sample_rate, sample_rate, kMaxRatio));
  const int64_t in_frames = src.frames();
  // A little room beyond n * ratio; libsamplerate reports how many frames it wrote.
  const auto out_capacity = static_cast<int64_t>(std::ceil(in_frames * ratio)) + 16;
  if (out_capacity > kMaxResampledSamples / src.channels)
    throw Error(
        fmt::format("resampling {} frames from {} Hz to {} Hz would give more than {} "
                    "samples",
                    in_frames, src.sample_rate, sample_rate, kMaxResampledSamples));
  DecodedAudio out;
  out.sample_rate = sample_rate;
  out.channels = src.channels;
  out.samples.resize(static_cast<size_t>(out_capacity * src.channels));
  SRC_DATA data{};
  data.data_in = src.samples.data();
  data.data_out = out.samples.data();
  data.input_frames = static_cast<long>(in_frames);
  data.output_frames = static_cast<long>(out_capacity);
  data.src_ratio = ratio;
  data.end_of_input = 1;
  const int status = src_simple(&data, SRC_SINC_BEST_QUALITY, static_cast<int>(src.channels));
  if (status != 0)
    throw Error(fmt::format("libsamplerate cannot resample from {} Hz to {} Hz: {}",
                            src.sample_rate, sample_rate, src_strerror(status)));
  out.samples.resize(static_cast<size_t>(data.output_frames_gen * src.channels));
  return out;
}

DecodedAudio downmix_to_mono(const DecodedAudio& src) {
  if (src.channels <= 1) return src;
  DecodedAudio out;
  out.sample_rate = src.sample_rate;
  out.channels = 1;
  const int64_t frames = src.frames();
  out.samples.resize(static_cast<size_t>(frames));
  for (int64_t f = 0; f < frames; ++f) {
    double sum = 0.0;
    for (int64_t c = 0; c < src.channels; ++c) sum += src.samples[f * src.channels + c];
    out.samples[f] = static_cast<float>(sum / static_cast<double>(src.channels));
  }
  return out;
}

}  // namespace fg
