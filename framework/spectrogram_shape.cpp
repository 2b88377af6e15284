// Spectrogram geometry (docs/data.md, "Audio"): the one definition shared by the preprocessing
// parser and engine/data/spectrogram.cpp.
//   stft (Keras STFTSpectrogram, padding "valid"): frames of frame_length samples every
//        frame_step samples, no padding: (samples - frame_length) / frame_step + 1 frames, 0
//        when the signal is shorter than one frame.
//   mel  (Keras MelSpectrogram, keras.ops.stft with center=True): the signal is reflect-padded
//        by fft_length / 2 on each side and cut into segments of fft_length samples:
//        (samples + 2 * (fft_length / 2) - fft_length) / frame_step + 1 frames.
#include <fmt/format.h>

#include "framework/error.hpp"
#include "framework/preprocessing.hpp"

namespace fg {

int64_t spectrogram_frames(const AudioPreprocessing& audio, int64_t samples) {
  if (audio.features == AudioFeatures::none) return samples;
  if (samples == kDynamic) return kDynamic;
  if (audio.frame_step < 1 || audio.frame_length < 1 || audio.fft_length < 1)
    throw Error(
        fmt::format("spectrogram geometry: frame_length {}, frame_step {} and fft_length "
                    "{} must be at least 1",
                    audio.frame_length, audio.frame_step, audio.fft_length));
  if (samples < 1) return 0;
  if (audio.features == AudioFeatures::stft) {
    if (samples < audio.frame_length) return 0;
    return (samples - audio.frame_length) / audio.frame_step + 1;
  }
  const int64_t padded = samples + 2 * (audio.fft_length / 2);
  if (padded < audio.fft_length) return 0;
  return (padded - audio.fft_length) / audio.frame_step + 1;
}

int64_t spectrogram_bins(const AudioPreprocessing& audio) {
  switch (audio.features) {
    case AudioFeatures::stft:
      return audio.fft_length / 2 + 1;
    case AudioFeatures::mel:
      return audio.n_mels;
    case AudioFeatures::none:
      break;
  }
  return 0;
}

}  // namespace fg
