// Images: PNG and JPEG files decoded (libpng, libjpeg-turbo), resized as Keras's `Resizing`,
// channels converted, rescaled and normalized into a graph input (docs/data.md, "Images").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/preprocessing.hpp"

namespace fg {

// Pixels row major, channels last, as floats in the 8-bit range [0, 255] (16-bit samples are
// scaled: v * 255 / 65535). channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (palettes expanded).
struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<float> pixels;  // height * width * channels
};

// Decodes PNG (8/16-bit, grey, palette, alpha, interlaced) or JPEG (baseline, progressive,
// grey, CMYK; EXIF orientation applied) by the file's magic bytes. Throws fg::Error naming
// `name` (the file) and the decoder's own message for a truncated, corrupt or unknown file.
DecodedImage decode_image(const unsigned char* bytes, size_t size, const std::string& name);
DecodedImage decode_image_file(const std::string& path);

// Channel conversion: grey -> RGB replicates; RGB -> grey with TensorFlow's rgb_to_grayscale
// weights (0.2989, 0.5870, 0.1140); alpha dropped (not composited) or added as 255.
DecodedImage convert_channels(const DecodedImage& src, int64_t channels);

// Keras `Resizing` (tf.image.resize, antialias off; bilinear with half-pixel centres, nearest,
// area), with crop_to_aspect_ratio taking the centred largest crop of the target's ratio first.
DecodedImage resize_image(const DecodedImage& src, int64_t height, int64_t width,
                          ResizeMethod method, bool crop_to_aspect_ratio);

// The whole pipeline for one sample: decode, convert channels, resize, then rescale / offset /
// mean / std. Writes height * width * channels floats to dst. Throws fg::Error naming the file.
void preprocess_image_file(const std::string& path, const ImagePreprocessing& config, float* dst);

}  // namespace fg
