// Small raw files for the raw-input tests (tests/api/test_raw_inputs.cpp,
// tests/cli/test_run_raw.cpp), written at test time with libpng and libsndfile, and the graph
// they feed, whose expected tensors the tests work out by hand.
#pragma once

#include <doctest/doctest.h>
#include <png.h>
#include <sndfile.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace fg::test {

// An 8-bit grey PNG, pixel (y, x) = grey[y * width + x].
inline void write_grey_png(const std::string& path, int height, int width,
                           const std::vector<unsigned char>& grey) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_GRAY;
  REQUIRE(png_image_write_to_file(&image, path.c_str(), 0, grey.data(), 0, nullptr) != 0);
}

// The known picture of the tests: (y, x) -> 10 y + 3 x + 7 + shift.
inline std::vector<unsigned char> known_pixels(int height, int width, int shift) {
  std::vector<unsigned char> px;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      px.push_back(static_cast<unsigned char>(10 * y + 3 * x + 7 + shift));
  return px;
}

// A mono float WAV (values kept exactly) at `rate`.
inline void write_float_wav(const std::string& path, int rate, const std::vector<float>& samples) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  REQUIRE(sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size())) ==
          static_cast<sf_count_t>(samples.size()));
  sf_close(f);
}

// Vocabulary of raw_graph_yaml: leather -> 2, ankle -> 3, boot -> 4, shirt -> 5.
inline void write_vocabulary(const std::string& path) {
  std::ofstream(path) << "leather\nankle\nboot\nshirt\n";
}

// Image 3 x 5 grey rescaled to [0, 1]; audio at 8 kHz, `max_length` samples (or null); text of
// 4 tokens (or null) from vocab.txt beside the graph; a softmax over 3 named classes, one of
// which needs CSV quoting.
inline std::string raw_graph_yaml(const std::string& audio_length, const std::string& text_length) {
  const std::string audio_max = audio_length == "null" ? "" : ", max_length: " + audio_length;
  const std::string text_max =
      text_length == "null" ? "" : ", output_sequence_length: " + text_length;
  return "name: raw_small\n"
         "inputs:\n"
         "  image: {shape: [3, 5, 1], preprocessing: {type: image, height: 3, width: 5, channels: "
         "1, rescale: 0.00392156862745098}}\n"
         "  audio: {shape: [" +
         audio_length +
         ", 1], preprocessing: {type: audio, sample_rate: "
         "8000, mono: true" +
         audio_max +
         "}}\n"
         "  text: {shape: [" +
         text_length +
         "], dtype: int32, preprocessing: {type: text, "
         "vocabulary: vocab.txt" +
         text_max +
         "}}\n"
         "nodes:\n"
         "  - {name: image_flat, op: flatten, input: image}\n"
         "  - {name: audio_gap, op: global_average_pooling1d, input: audio}\n"
         "  - {name: text_emb, op: embedding, input: text, input_dim: 10, output_dim: 2}\n"
         "  - {name: text_gap, op: global_average_pooling1d, input: text_emb}\n"
         "  - {name: fusion, op: concatenate, inputs: [image_flat, audio_gap, text_gap]}\n"
         "  - {name: classifier, op: dense, input: fusion, units: 3, activation: softmax}\n"
         "outputs:\n"
         "  classifier: {preprocessing: {type: category, classes: [boot, \"shirt, long\", "
         "sandal]}}\n";
}

}  // namespace fg::test
