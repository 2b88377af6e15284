// One audio sample from file to graph input: decode, down-mix, resample, cut or pad,
// normalize, and optionally a spectrogram (docs/data.md, "Audio").
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"

namespace fg {

void fit_audio_length(DecodedAudio& audio, int64_t length) {
  if (length < 1) throw Error(fmt::format("max_length is {}; at least 1 is needed", length));
  audio.samples.resize(static_cast<size_t>(length * audio.channels), 0.0f);
}

void normalize_peak(std::vector<float>& samples) {
  float peak = 0.0f;
  for (float v : samples) peak = std::max(peak, std::fabs(v));
  if (peak == 0.0f) return;  // silence stays silence
  for (float& v : samples) v /= peak;
}

namespace {

void add_features(const DecodedAudio& audio, const AudioPreprocessing& config,
                  std::vector<float>& dst, Dims& shape) {
  if (audio.channels != 1)
    throw Error(
        fmt::format("a spectrogram needs mono audio, this sample has {} channels", audio.channels))
        .hint("set mono: true with features: stft or mel");
  const int64_t samples = audio.frames();
  const int64_t frames = spectrogram_frames(config, samples);
  if (frames < 1)
    throw Error(fmt::format("the audio has {} samples, too few for one spectrogram frame of {} "
                            "samples",
                            samples, config.frame_length))
        .hint("use longer clips, a smaller frame_length, or max_length to pad them");
  dst = config.features == AudioFeatures::stft ? stft_spectrogram(audio.samples, config)
                                               : mel_spectrogram(audio.samples, config);
  shape = Dims{frames, spectrogram_bins(config)};
}

}  // namespace

void preprocess_audio_file(const std::string& path, const AudioPreprocessing& config,
                           std::vector<float>& dst, Dims& shape) {
  try {
    DecodedAudio audio = decode_audio_file(path);
    // Down-mixing first is the same linear map as after resampling, on fewer channels.
    if (config.mono && audio.channels > 1) audio = downmix_to_mono(audio);
    if (audio.sample_rate != config.sample_rate) audio = resample_audio(audio, config.sample_rate);
    if (audio.frames() < 1)
      throw Error(fmt::format("no samples are left after resampling to {} Hz", config.sample_rate));
    if (config.max_length) fit_audio_length(audio, *config.max_length);
    if (config.normalize == AudioNormalize::peak) normalize_peak(audio.samples);
    if (config.features != AudioFeatures::none) {
      add_features(audio, config, dst, shape);
      return;
    }
    shape = Dims{audio.frames(), audio.channels};
    dst = std::move(audio.samples);
  } catch (Error& e) {
    if (e.loc().file.empty()) e.in_file(path);
    throw;
  }
}

}  // namespace fg
