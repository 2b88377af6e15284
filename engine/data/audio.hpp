// Audio: WAV, FLAC and OGG decoded with libsndfile, resampled with libsamplerate, down-mixed,
// cut or padded, normalized, and optionally turned into a spectrogram with FFTW, as a graph
// input (docs/data.md, "Audio").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/preprocessing.hpp"

namespace fg {

// Samples interleaved by channel, floats in [-1, 1].
struct DecodedAudio {
  int64_t sample_rate = 0;
  int64_t channels = 0;
  std::vector<float> samples;  // frames * channels
  int64_t frames() const { return channels ? static_cast<int64_t>(samples.size()) / channels : 0; }
};

// Throws fg::Error naming the file and libsndfile's message (missing, truncated, not audio,
// no samples).
DecodedAudio decode_audio_file(const std::string& path);

// libsamplerate (SRC_SINC_BEST_QUALITY); returns src unchanged when the rates are equal.
DecodedAudio resample_audio(const DecodedAudio& src, int64_t sample_rate);
DecodedAudio downmix_to_mono(const DecodedAudio& src);  // mean of the channels

// Keeps the first `length` frames, or pads with zero frames at the end (length >= 1).
void fit_audio_length(DecodedAudio& audio, int64_t length);
// Divides by the largest |x| over all channels; silence (all zeros) is left alone.
void normalize_peak(std::vector<float>& samples);

// Spectrograms of a mono signal, row major [frames, bins] (framework/preprocessing.hpp gives
// the geometry: spectrogram_frames / spectrogram_bins), as Keras's STFTSpectrogram and
// MelSpectrogram define them.
std::vector<float> stft_spectrogram(const std::vector<float>& mono,
                                    const AudioPreprocessing& config);
std::vector<float> mel_spectrogram(const std::vector<float>& mono,
                                   const AudioPreprocessing& config);
// The HTK mel filterbank (Keras linear_to_mel_weight_matrix, as tf.signal's), row major
// [fft_length / 2 + 1, n_mels]: triangles of peak 1 in mel = 1127 ln(1 + f / 700), the DC row 0.
std::vector<float> mel_weight_matrix(const AudioPreprocessing& config);

// The whole pipeline for one sample: decode, resample, down-mix, cut / pad to max_length,
// normalize, features. `dst` is resized to the sample's values and `shape` set to its
// per-sample shape ([length, channels] or [frames, bins]). Throws fg::Error naming the file.
void preprocess_audio_file(const std::string& path, const AudioPreprocessing& config,
                           std::vector<float>& dst, Dims& shape);

}  // namespace fg
