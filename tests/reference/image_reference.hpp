// Naive references for image preprocessing, in double, written from the definitions (not from
// engine/data/): tf.image.resize's bilinear and nearest with half-pixel centres (TensorFlow's
// resize_bilinear_op.cc / resize_nearest_neighbor_op.cc formulas), area as the exact
// area-weighted average of the input cells an output cell covers, Keras's aspect-ratio crop,
// and tf.image.rgb_to_grayscale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace fg::ref {

struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<double> v;  // row major, channels last

  double at(int64_t r, int64_t c, int64_t k) const { return v[(r * width + c) * channels + k]; }
  double& at(int64_t r, int64_t c, int64_t k) { return v[(r * width + c) * channels + k]; }
};

inline Image blank_image(int64_t height, int64_t width, int64_t channels) {
  return Image{height, width, channels,
               std::vector<double>(static_cast<size_t>(height * width * channels), 0.0)};
}

// src = (dst + 0.5) * in / out - 0.5; lower = max(floor(src), 0), upper = min(ceil(src),
// in - 1), weight of upper = src - floor(src).
inline Image resize_bilinear(const Image& in, int64_t out_h, int64_t out_w) {
  Image out = blank_image(out_h, out_w, in.channels);
  auto coord = [](int64_t dst, int64_t n_in, int64_t n_out, int64_t& lo, int64_t& hi, double& t) {
    const double src = (dst + 0.5) * static_cast<double>(n_in) / static_cast<double>(n_out) - 0.5;
    lo = std::max<int64_t>(static_cast<int64_t>(std::floor(src)), 0);
    hi = std::min<int64_t>(static_cast<int64_t>(std::ceil(src)), n_in - 1);
    t = src - std::floor(src);
  };
  for (int64_t y = 0; y < out_h; ++y)
    for (int64_t x = 0; x < out_w; ++x) {
      int64_t y0, y1, x0, x1;
      double ty, tx;
      coord(y, in.height, out_h, y0, y1, ty);
      coord(x, in.width, out_w, x0, x1, tx);
      for (int64_t k = 0; k < in.channels; ++k)
        out.at(y, x, k) = (1 - ty) * ((1 - tx) * in.at(y0, x0, k) + tx * in.at(y0, x1, k)) +
                          ty * ((1 - tx) * in.at(y1, x0, k) + tx * in.at(y1, x1, k));
    }
  return out;
}

// src = min(floor((dst + 0.5) * scale), in - 1) with TensorFlow's float32 scale = in / out.
inline Image resize_nearest(const Image& in, int64_t out_h, int64_t out_w) {
  Image out = blank_image(out_h, out_w, in.channels);
  auto index = [](int64_t dst, int64_t n_in, int64_t n_out) {
    const float scale = static_cast<float>(n_in) / static_cast<float>(n_out);
    const auto src = static_cast<int64_t>(std::floor((static_cast<float>(dst) + 0.5f) * scale));
    return std::max<int64_t>(0, std::min(src, n_in - 1));
  };
  for (int64_t y = 0; y < out_h; ++y)
    for (int64_t x = 0; x < out_w; ++x)
      for (int64_t k = 0; k < in.channels; ++k)
        out.at(y, x, k) = in.at(index(y, in.height, out_h), index(x, in.width, out_w), k);
  return out;
}

// Output cell (y, x) covers [y * in_h / out_h, (y + 1) * in_h / out_h) x (the same in x) of the
// input plane; its value is the integral of the input over it divided by its area.
inline Image resize_area(const Image& in, int64_t out_h, int64_t out_w) {
  Image out = blank_image(out_h, out_w, in.channels);
  const double sy = static_cast<double>(in.height) / out_h,
               sx = static_cast<double>(in.width) / out_w;
  for (int64_t y = 0; y < out_h; ++y)
    for (int64_t x = 0; x < out_w; ++x)
      for (int64_t r = 0; r < in.height; ++r) {
        const double oy = std::min(r + 1.0, (y + 1) * sy) - std::max<double>(r, y * sy);
        if (oy <= 0) continue;
        for (int64_t c = 0; c < in.width; ++c) {
          const double ox = std::min(c + 1.0, (x + 1) * sx) - std::max<double>(c, x * sx);
          if (ox <= 0) continue;
          for (int64_t k = 0; k < in.channels; ++k)
            out.at(y, x, k) += in.at(r, c, k) * oy * ox / (sy * sx);
        }
      }
  return out;
}

inline Image crop(const Image& in, int64_t top, int64_t left, int64_t h, int64_t w) {
  Image out = blank_image(h, w, in.channels);
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c)
      for (int64_t k = 0; k < in.channels; ++k) out.at(r, c, k) = in.at(top + r, left + c, k);
  return out;
}

inline Image rgb_to_grey(const Image& in) {
  Image out = blank_image(in.height, in.width, 1);
  for (int64_t r = 0; r < in.height; ++r)
    for (int64_t c = 0; c < in.width; ++c)
      out.at(r, c, 0) = 0.2989 * in.at(r, c, 0) + 0.5870 * in.at(r, c, 1) + 0.1140 * in.at(r, c, 2);
  return out;
}

}  // namespace fg::ref
