// Preprocessing declared per graph input (and per output for labels) in the YAML:
//
//   inputs:
//     image: {shape: [28, 28, 1], preprocessing: {type: image, height: 28, width: 28,
//             channels: 1, resize: bilinear, rescale: 0.00392156862745098}}
//     audio: {shape: [null, 1], preprocessing: {type: audio, sample_rate: 16000, mono: true,
//             max_length: 16000}}
//     text:  {shape: [null], dtype: int32, preprocessing: {type: text,
//             standardize: lower_and_strip_punctuation, split: whitespace, max_tokens: 1000,
//             output_sequence_length: 20}}
//   outputs:
//     classifier: {preprocessing: {type: category, classes: [...]}}
//
// This file only knows the configuration: the values as validated structs (every key checked
// with did-you-mean, ranges, and the fit with the input's shape and dtype). Decoding, resizing,
// resampling and tokenizing live in engine/data/. docs/data.md states every key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "framework/error.hpp"
#include "framework/shape.hpp"

namespace fg {

struct GraphDef;
struct Value;

enum class ResizeMethod { bilinear, nearest, area };

struct ImagePreprocessing {
  int64_t height = 0, width = 0;  // the output size (required)
  int64_t channels = 3;           // 1 (grey), 3 (RGB) or 4 (RGBA); files are converted
  ResizeMethod resize = ResizeMethod::bilinear;
  bool crop_to_aspect_ratio = false;  // Keras Resizing: centre crop to the target ratio first
  // After resizing, per value: (v * rescale + offset - mean[c]) / std[c] (mean/std empty = 0/1;
  // else one per channel). Values before that are in the 8-bit range [0, 255].
  double rescale = 1.0;
  double offset = 0.0;
  std::vector<double> mean, std;
};

enum class AudioNormalize { none, peak };
enum class AudioFeatures { none, stft, mel };

struct AudioPreprocessing {
  int64_t sample_rate = 16000;  // files at another rate are resampled (libsamplerate)
  bool mono = true;             // down-mix (mean of the channels); false keeps channels
  // Samples kept from the start; shorter files are padded with zeros at the end. nullopt keeps
  // the file's length (the input's length dim must then be null).
  std::optional<int64_t> max_length;
  AudioNormalize normalize = AudioNormalize::none;
  AudioFeatures features = AudioFeatures::none;
  // Spectrogram settings (features != none), as Keras's STFTSpectrogram / MelSpectrogram.
  int64_t frame_length = 400;              // samples per frame (window length)
  int64_t frame_step = 160;                // hop
  int64_t fft_length = 512;                // >= frame_length
  std::string window = "hann";             // hann | hamming | none
  int64_t n_mels = 64;                     // mel
  double min_freq = 20.0, max_freq = 0.0;  // mel; max_freq 0 = sample_rate / 2
  // mel: 10 log10(max(power, 1e-10)) dB, floored 80 dB below the sample's peak (Keras
  // power_to_db, top_db 80); stft: ln(max(magnitude, 1e-7)) (Keras mode "log")
  bool log = true;
};

enum class TextStandardize { none, lower_and_strip_punctuation, lower, strip_punctuation };
enum class TextSplit { whitespace, character };

struct TextPreprocessing {
  TextStandardize standardize = TextStandardize::lower_and_strip_punctuation;
  TextSplit split = TextSplit::whitespace;
  // Vocabulary size including padding (0) and out-of-vocabulary (1); 0 = unlimited.
  int64_t max_tokens = 0;
  // Tokens per sample: pad with 0 / truncate; nullopt keeps every token (ragged).
  std::optional<int64_t> output_sequence_length;
  // A file with one token per line (the token on line i gets id i + 2), resolved relative to
  // the graph file; empty = built from the training data by frequency (Keras's adapt).
  std::string vocabulary_file;
};

struct CategoryPreprocessing {
  // Class names in class order; empty = taken from the training data (sorted by name).
  std::vector<std::string> classes;
};

using PreprocessingSpec =
    std::variant<ImagePreprocessing, AudioPreprocessing, TextPreprocessing, CategoryPreprocessing>;

// The preprocessing of one graph input or output.
struct FieldPreprocessing {
  std::string name;  // the input or output
  bool output = false;
  PreprocessingSpec spec;
  SourceLoc loc;  // the `preprocessing:` value, for messages
};

struct PreprocessingConfig {
  std::vector<FieldPreprocessing> fields;  // inputs in graph order, then outputs in output order

  const FieldPreprocessing* input(const std::string& name) const;   // nullptr when none
  const FieldPreprocessing* output(const std::string& name) const;  // nullptr when none
  bool empty() const { return fields.empty(); }
};

// Parses and validates every `preprocessing:` of the graph (GraphDef::inputs[i].preprocessing,
// GraphDef::output_preprocessing). Throws fg::Error at the offending key with did-you-mean,
// ranges, and a type that does not fit the input: image needs a float32 input of shape
// [height, width, channels]; audio a float32 [length or null, channels] (mono: 1) or, with
// features, [frames or null, bins]; text an int32 input [output_sequence_length or null];
// category only on outputs.
PreprocessingConfig parse_preprocessing(const GraphDef& graph);

// The fixed per-sample shape a field's preprocessing produces (kDynamic for lengths the
// data decides), checked against the declared input shape by parse_preprocessing.
Dims preprocessed_shape(const PreprocessingSpec& spec);

// Spectrogram geometry (features != none), the one definition the parser and the audio
// pipeline share: frames for a signal of `samples` samples, and bins per frame (stft:
// fft_length / 2 + 1; mel: n_mels).
int64_t spectrogram_frames(const AudioPreprocessing& audio, int64_t samples);
int64_t spectrogram_bins(const AudioPreprocessing& audio);

}  // namespace fg
