// Keras's `Resizing` layer: tf.image.resize (antialias off) on the whole picture, or on the
// centred crop of the target's aspect ratio first (crop_to_aspect_ratio). The arithmetic is
// TensorFlow's CPU kernels', in float: ResizeBilinear and ResizeNearestNeighbor with
// half_pixel_centers=true, ResizeArea with align_corners=false (docs/data.md, "Images").
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/data/image.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

// The part of the source picture that is resized.
struct SourceView {
  const DecodedImage& image;
  CropWindow window;

  const float* pixel(int64_t row, int64_t col) const {
    return &image.pixels[static_cast<size_t>(
        ((window.top + row) * image.width + window.left + col) * image.channels)];
  }
};

DecodedImage output_image(int64_t height, int64_t width, int64_t channels) {
  DecodedImage out;
  out.height = height;
  out.width = width;
  out.channels = channels;
  out.pixels.resize(static_cast<size_t>(height * width * channels));
  return out;
}

// TensorFlow's CalculateResizeScale (align_corners off).
float resize_scale(int64_t in_size, int64_t out_size) {
  return static_cast<float>(in_size) / static_cast<float>(out_size);
}

struct Interpolation {
  int64_t lower = 0, upper = 0;
  float lerp = 0;
};

// TensorFlow's compute_interpolation_weights with the HalfPixelScaler.
std::vector<Interpolation> bilinear_weights(int64_t out_size, int64_t in_size) {
  const float scale = resize_scale(in_size, out_size);
  std::vector<Interpolation> out(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const float in = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
    const float in_floor = std::floor(in);
    out[i].lower = std::max(static_cast<int64_t>(in_floor), int64_t{0});
    out[i].upper = std::min(static_cast<int64_t>(std::ceil(in)), in_size - 1);
    out[i].lerp = in - in_floor;
  }
  return out;
}

DecodedImage resize_bilinear(const SourceView& src, int64_t height, int64_t width) {
  DecodedImage out = output_image(height, width, src.image.channels);
  const auto ys = bilinear_weights(height, src.window.height);
  const auto xs = bilinear_weights(width, src.window.width);
  const int64_t channels = out.channels;
  float* dst = out.pixels.data();
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < channels; ++c) {
        const float top_left = src.pixel(ys[y].lower, xs[x].lower)[c];
        const float top_right = src.pixel(ys[y].lower, xs[x].upper)[c];
        const float bottom_left = src.pixel(ys[y].upper, xs[x].lower)[c];
        const float bottom_right = src.pixel(ys[y].upper, xs[x].upper)[c];
        const float top = top_left + (top_right - top_left) * xs[x].lerp;
        const float bottom = bottom_left + (bottom_right - bottom_left) * xs[x].lerp;
        *dst++ = top + (bottom - top) * ys[y].lerp;
      }
  return out;
}

// ResizeNearestNeighbor with half-pixel centres: floor((i + 0.5) * scale), clamped.
std::vector<int64_t> nearest_indices(int64_t out_size, int64_t in_size) {
  const float scale = resize_scale(in_size, out_size);
  std::vector<int64_t> out(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const auto in = static_cast<int64_t>(std::floor((static_cast<float>(i) + 0.5f) * scale));
    out[i] = std::max(int64_t{0}, std::min(in, in_size - 1));
  }
  return out;
}

DecodedImage resize_nearest(const SourceView& src, int64_t height, int64_t width) {
  DecodedImage out = output_image(height, width, src.image.channels);
  const auto ys = nearest_indices(height, src.window.height);
  const auto xs = nearest_indices(width, src.window.width);
  const size_t channels = static_cast<size_t>(out.channels);
  float* dst = out.pixels.data();
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x, dst += channels)
      std::copy_n(src.pixel(ys[y], xs[x]), channels, dst);
  return out;
}

struct AreaTerm {
  int64_t index = 0;  // clamped into the picture, as TensorFlow's Bound
  float weight = 0;   // the length of [i, i + 1) inside [out * scale, (out + 1) * scale)
};

// The input cells output cell `i` covers, as ResizeArea computes them.
std::vector<AreaTerm> area_terms(int64_t i, float scale, int64_t in_size) {
  const float in0 = static_cast<float>(i) * scale;
  const float in1 = static_cast<float>(i + 1) * scale;
  const auto start = static_cast<int64_t>(std::floor(in0));
  const auto end = static_cast<int64_t>(std::ceil(in1));
  std::vector<AreaTerm> terms;
  for (int64_t k = start; k < end; ++k) {
    const float kf = static_cast<float>(k);
    float weight;
    if (kf < in0)
      weight = kf + 1 > in1 ? scale : kf + 1 - in0;
    else
      weight = kf + 1 > in1 ? in1 - kf : 1.0f;
    terms.push_back({std::min(in_size - 1, std::max(int64_t{0}, k)), weight});
  }
  return terms;
}

DecodedImage resize_area(const SourceView& src, int64_t height, int64_t width) {
  DecodedImage out = output_image(height, width, src.image.channels);
  const float scale_y = resize_scale(src.window.height, height);
  const float scale_x = resize_scale(src.window.width, width);
  const auto inverse_area = static_cast<float>(1.0 / (scale_y * scale_x));
  std::vector<std::vector<AreaTerm>> xs;
  for (int64_t x = 0; x < width; ++x) xs.push_back(area_terms(x, scale_x, src.window.width));
  const int64_t channels = out.channels;
  float* dst = out.pixels.data();
  for (int64_t y = 0; y < height; ++y) {
    const auto ys = area_terms(y, scale_y, src.window.height);
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < channels; ++c) {
        float sum = 0;
        for (const AreaTerm& ty : ys) {
          float row_sum = 0;
          for (const AreaTerm& tx : xs[x]) row_sum += src.pixel(ty.index, tx.index)[c] * tx.weight;
          sum += row_sum * ty.weight;
        }
        *dst++ = sum * inverse_area;
      }
  }
  return out;
}

}  // namespace

CropWindow aspect_ratio_crop(int64_t height, int64_t width, int64_t target_height,
                             int64_t target_width) {
  // keras.src.backend.tensorflow.image.resize: float32 quotients truncated to int32
  auto crop_height = static_cast<int64_t>(static_cast<float>(width * target_height) /
                                          static_cast<float>(target_width));
  crop_height = std::max(std::min(height, crop_height), int64_t{1});
  auto crop_width = static_cast<int64_t>(static_cast<float>(height * target_width) /
                                         static_cast<float>(target_height));
  crop_width = std::max(std::min(width, crop_width), int64_t{1});
  CropWindow w;
  w.top = static_cast<int64_t>(static_cast<float>(height - crop_height) / 2);
  w.left = static_cast<int64_t>(static_cast<float>(width - crop_width) / 2);
  w.height = crop_height;
  w.width = crop_width;
  return w;
}

DecodedImage resize_image(const DecodedImage& src, int64_t height, int64_t width,
                          ResizeMethod method, bool crop_to_aspect_ratio) {
  if (src.height < 1 || src.width < 1 || src.channels < 1 ||
      src.pixels.size() != static_cast<size_t>(src.height * src.width * src.channels))
    throw Error(fmt::format("resize: the source image {}x{}x{} holds {} values", src.height,
                            src.width, src.channels, src.pixels.size()));
  if (height < 1 || width < 1 || height > kMaxImageSide || width > kMaxImageSide ||
      height * width > kMaxImagePixels)
    throw Error(
        fmt::format("resize: the output size {}x{} is outside 1..{} per side and {} "
                    "pixels in all",
                    height, width, kMaxImageSide, kMaxImagePixels));
  SourceView view{src, CropWindow{0, 0, src.height, src.width}};
  if (crop_to_aspect_ratio) view.window = aspect_ratio_crop(src.height, src.width, height, width);
  if (src.height == height && src.width == width && view.window.height == height &&
      view.window.width == width)
    return src;  // the same size: every method is the identity
  switch (method) {
    case ResizeMethod::nearest:
      return resize_nearest(view, height, width);
    case ResizeMethod::area:
      return resize_area(view, height, width);
    case ResizeMethod::bilinear:
      break;
  }
  return resize_bilinear(view, height, width);
}

}  // namespace fg
