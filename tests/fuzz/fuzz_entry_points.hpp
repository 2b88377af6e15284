// What the fuzz targets do with one input, shared by the libFuzzer targets (tests/fuzz/targets/,
// built with clang by scripts/fuzz.sh) and the regression replay in the normal suite
// (tests/fuzz/test_fuzz_regressions.cpp). Each entry point feeds the bytes to a reader the way
// graph-runner does and either returns or throws fg::Error; anything else (another exception, a
// sanitizer report, a signal, a hang, unbounded memory) is a finding. See docs/fuzzing.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fg::fuzz {

// YAML graph text: load_graph_string, compile_graph with the built-in ops, the symbolic
// summary, table, JSON and DOT; then bind with batch 2 and every null dim 3, and the concrete
// weights, FLOPs and summary; the same again with batch 1 and the null dims graph-runner run
// binds without --dim (default_shape, else 100).
void graph_yaml(const uint8_t* data, size_t size);

// A safetensors file: read_safetensors (every tensor's bytes read, borrowed data checked to lie
// inside the file), then WeightStore::load_safetensors and validate against a small graph
// (kValidateGraph) that has dense, embedding, conv1d and batch_normalization weights.
void safetensors_file(const uint8_t* data, size_t size);

// An .npy file: read_npy as float32 and as int32 (every element read).
void npy_file(const uint8_t* data, size_t size);

// Image file bytes: decode_image (PNG or JPEG by magic bytes), then, for pictures of at most
// kMaxConvertedPixels pixels, convert_channels to 1 and to 3 and resize_image of each to 7x5
// with every method (bilinear, nearest, area; crop_to_aspect_ratio on and off).
void image_file(const uint8_t* data, size_t size);

// Audio file bytes (WAV, FLAC, OGG, ... by libsndfile) through the file path: decode_audio_file,
// then resample_audio to 8000 Hz (only when the file has at most kMaxResampledFrames frames,
// before and after), downmix_to_mono, fit_audio_length to kMaxSpectrogramFrames when longer,
// normalize_peak and a small mel spectrogram (mel_settings() in the .cpp).
void audio_file(const uint8_t* data, size_t size);

// Table bytes read by Table::read as a .csv, a .tsv and a .jsonl file (the reader picks the
// format by extension: the bytes are reached through symbolic links with those names in a
// per-process temporary folder); every cell, its missing flag, line and where() read. Throws
// the first fg::Error when none of the three reads the bytes.
void table_file(const uint8_t* data, size_t size);

// Bounds on the work the image and audio targets do beyond decoding, so that a large but valid
// picture or sound is no timeout or out-of-memory finding of the target itself.
constexpr int64_t kMaxConvertedPixels = int64_t{1} << 22;
constexpr int64_t kMaxResampledFrames = 1'000'000;
constexpr int64_t kMaxSpectrogramFrames = 1'000'000;

// The graph safetensors_file validates against; tests/fuzz/make_corpus.py writes seeds for it.
extern const char* const kValidateGraph;

struct Target {
  std::string name;  // the fuzz target is fuzz_<name>; reproducers live in regressions/<name>/
  void (*run)(const uint8_t* data, size_t size);
};
const std::vector<Target>& targets();

}  // namespace fg::fuzz
