// One image sample for a graph input: decode, convert channels, resize (Keras `Resizing`),
// then rescale / offset (Keras `Rescaling`) and mean / std per channel (docs/data.md, "Images").
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "engine/data/image.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

// tf.image.rgb_to_grayscale's weights.
constexpr float kLumaRed = 0.2989f, kLumaGreen = 0.5870f, kLumaBlue = 0.1140f;

bool has_alpha(int64_t channels) {
  return channels == 2 || channels == 4;
}

}  // namespace

DecodedImage convert_channels(const DecodedImage& src, int64_t channels) {
  if (src.channels < 1 || src.channels > 4 || channels < 1 || channels > 4)
    throw Error(fmt::format("convert_channels: {} channels to {} (1 to 4 are known)", src.channels,
                            channels));
  if (src.channels == channels) return src;
  DecodedImage out;
  out.height = src.height;
  out.width = src.width;
  out.channels = channels;
  const size_t pixels = static_cast<size_t>(src.height * src.width);
  out.pixels.resize(pixels * static_cast<size_t>(channels));
  const bool src_grey = src.channels <= 2, dst_grey = channels <= 2;
  const float* in = src.pixels.data();
  float* o = out.pixels.data();
  for (size_t p = 0; p < pixels; ++p, in += src.channels, o += channels) {
    if (dst_grey)
      o[0] = src_grey ? in[0] : kLumaRed * in[0] + kLumaGreen * in[1] + kLumaBlue * in[2];
    else if (src_grey)
      o[0] = o[1] = o[2] = in[0];
    else
      std::copy_n(in, 3, o);
    if (has_alpha(channels))
      o[channels - 1] = has_alpha(src.channels) ? in[src.channels - 1] : 255.f;
  }
  return out;
}

void normalize_pixels(float* values, size_t count, int64_t channels,
                      const ImagePreprocessing& config) {
  const size_t c = static_cast<size_t>(channels);
  const bool has_mean = !config.mean.empty(), has_std = !config.std.empty();
  if ((has_mean && config.mean.size() != c) || (has_std && config.std.size() != c))
    throw Error(fmt::format("image preprocessing: mean has {} and std {} values for {} channels",
                            config.mean.size(), config.std.size(), channels));
  std::vector<float> scale(c), shift(c);  // v * scale + shift
  for (size_t k = 0; k < c; ++k) {
    const double mean = has_mean ? config.mean[k] : 0.0;
    const double std = has_std ? config.std[k] : 1.0;
    if (!(std != 0.0))
      throw Error(fmt::format("image preprocessing: std of channel {} is {}", k, std));
    scale[k] = static_cast<float>(config.rescale / std);
    shift[k] = static_cast<float>((config.offset - mean) / std);
  }
  // pixel by pixel, channels inside (no division per value)
  for (size_t i = 0; i + c <= count; i += c)
    for (size_t k = 0; k < c; ++k) values[i + k] = values[i + k] * scale[k] + shift[k];
}

void preprocess_image_file(const std::string& path, const ImagePreprocessing& config, float* dst) {
  try {
    DecodedImage image = decode_image_file(path);
    if (image.channels != config.channels) image = convert_channels(image, config.channels);
    if (image.height != config.height || image.width != config.width)
      image = resize_image(image, config.height, config.width, config.resize,
                           config.crop_to_aspect_ratio);
    std::memcpy(dst, image.pixels.data(), image.pixels.size() * sizeof(float));
    normalize_pixels(dst, image.pixels.size(), image.channels, config);
  } catch (const Error& e) {
    if (!e.loc().file.empty()) throw;
    Error named(e.message());
    named.in_file(path);
    if (!e.hint_text().empty()) named.hint(e.hint_text());
    throw named;
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while decoding the image").in_file(path);
  }
}

}  // namespace fg
