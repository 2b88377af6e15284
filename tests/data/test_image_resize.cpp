// Keras `Resizing` (tf.image.resize, antialias off) against the naive double references of
// tests/reference/image_reference.hpp, and values derived by hand from TensorFlow's formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/data/image.hpp"
#include "tests/reference/image_reference.hpp"

namespace {

fg::DecodedImage make_image(int64_t h, int64_t w, int64_t c, const std::vector<float>& v) {
  fg::DecodedImage im;
  im.height = h, im.width = w, im.channels = c, im.pixels = v;
  REQUIRE(v.size() == static_cast<size_t>(h * w * c));
  return im;
}

fg::DecodedImage random_image(int64_t h, int64_t w, int64_t c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 255.f);
  std::vector<float> v(static_cast<size_t>(h * w * c));
  for (auto& x : v) x = u(rng);
  return make_image(h, w, c, v);
}

// A gradient that differs per channel: 3 r + 5 c + 40 k.
fg::DecodedImage gradient_image(int64_t h, int64_t w, int64_t c) {
  std::vector<float> v;
  for (int64_t r = 0; r < h; ++r)
    for (int64_t col = 0; col < w; ++col)
      for (int64_t k = 0; k < c; ++k) v.push_back(static_cast<float>(3 * r + 5 * col + 40 * k));
  return make_image(h, w, c, v);
}

fg::ref::Image to_ref(const fg::DecodedImage& im) {
  fg::ref::Image r{im.height, im.width, im.channels, {}};
  r.v.assign(im.pixels.begin(), im.pixels.end());
  return r;
}

void check_same(const fg::DecodedImage& got, const fg::ref::Image& want, double atol) {
  REQUIRE(got.height == want.height);
  REQUIRE(got.width == want.width);
  REQUIRE(got.channels == want.channels);
  REQUIRE(got.pixels.size() == want.v.size());
  int reported = 0;
  for (size_t i = 0; i < want.v.size(); ++i)
    if (!(std::fabs(got.pixels[i] - want.v[i]) <= atol) && reported++ < 5)
      CHECK_MESSAGE(false, "value " << i << ": got " << got.pixels[i] << ", want " << want.v[i]);
}

fg::ref::Image reference(const fg::ref::Image& in, int64_t h, int64_t w, fg::ResizeMethod m) {
  switch (m) {
    case fg::ResizeMethod::nearest:
      return fg::ref::resize_nearest(in, h, w);
    case fg::ResizeMethod::area:
      return fg::ref::resize_area(in, h, w);
    default:
      return fg::ref::resize_bilinear(in, h, w);
  }
}

struct Case {
  int64_t in_h, in_w, c, out_h, out_w;
};
const Case kCases[] = {{7, 13, 3, 28, 28}, {127, 5, 1, 13, 7}, {28, 28, 1, 7, 13},
                       {1, 9, 3, 1, 4},    {1, 4, 1, 3, 11},   {9, 1, 4, 5, 1},
                       {5, 127, 2, 7, 13}, {13, 7, 3, 13, 7},  {2, 3, 1, 17, 1}};

void check_window(const fg::CropWindow& got, int64_t top, int64_t left, int64_t h, int64_t w) {
  CHECK(got.top == top);
  CHECK(got.left == left);
  CHECK(got.height == h);
  CHECK(got.width == w);
}

}  // namespace

TEST_CASE("image resize: bilinear, nearest and area against the naive references") {
  const fg::ResizeMethod methods[] = {fg::ResizeMethod::bilinear, fg::ResizeMethod::nearest,
                                      fg::ResizeMethod::area};
  unsigned seed = 1;
  for (const auto& k : kCases)
    for (auto method : methods) {
      CAPTURE(k.in_h);
      CAPTURE(k.in_w);
      CAPTURE(k.out_h);
      CAPTURE(k.out_w);
      CAPTURE(static_cast<int>(method));
      for (const auto& im :
           {gradient_image(k.in_h, k.in_w, k.c), random_image(k.in_h, k.in_w, k.c, seed++)}) {
        auto got = fg::resize_image(im, k.out_h, k.out_w, method, false);
        check_same(got, reference(to_ref(im), k.out_h, k.out_w, method), 2e-3);
      }
    }
}

TEST_CASE("image resize: bilinear 2x2 -> 4x4 interpolates at 0.25 / 0.75 and clamps edges") {
  // source x for the 4 outputs: (j + 0.5) * 0.5 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25
  // (clamped to 1): a row [0, 4] becomes [0, 1, 3, 4]
  auto im = make_image(2, 2, 1, {0, 4, 8, 12});
  auto got = fg::resize_image(im, 4, 4, fg::ResizeMethod::bilinear, false);
  const std::vector<float> want = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};
  CHECK(got.pixels == want);
}

TEST_CASE("image resize: nearest picks floor((i + 0.5) * in / out)") {
  auto row = make_image(1, 5, 1, {10, 11, 12, 13, 14});
  // 5 -> 2: scale 2.5: floor(1.25) = 1, floor(3.75) = 3
  CHECK(fg::resize_image(row, 1, 2, fg::ResizeMethod::nearest, false).pixels ==
        std::vector<float>{11, 13});
  // 5 -> 3: scale 5/3: floor(0.833) = 0, floor(2.5) = 2, floor(4.17) = 4
  CHECK(fg::resize_image(row, 1, 3, fg::ResizeMethod::nearest, false).pixels ==
        std::vector<float>{10, 12, 14});
  // 2 -> 4: scale 0.5: floor(0.25), floor(0.75), floor(1.25), floor(1.75) = 0, 0, 1, 1
  auto two = make_image(1, 2, 1, {1, 2});
  CHECK(fg::resize_image(two, 1, 4, fg::ResizeMethod::nearest, false).pixels ==
        std::vector<float>{1, 1, 2, 2});
}

TEST_CASE("image resize: area averages the covered cells (TensorFlow's 4 -> 3 example)") {
  // resize_area_op.cc: out[0] = (in[0] + in[1] / 3) * 0.75, out[1] = (in[1] * 2/3 + in[2] *
  // 2/3) * 0.75, out[2] = (in[2] / 3 + in[3]) * 0.75
  auto row = make_image(1, 4, 1, {0, 3, 6, 9});
  auto got = fg::resize_image(row, 1, 3, fg::ResizeMethod::area, false);
  REQUIRE(got.pixels.size() == 3);
  CHECK(got.pixels[0] == doctest::Approx(0.75));
  CHECK(got.pixels[1] == doctest::Approx(4.5));
  CHECK(got.pixels[2] == doctest::Approx(8.25));
  CHECK(fg::resize_image(row, 1, 2, fg::ResizeMethod::area, false).pixels ==
        std::vector<float>{1.5f, 7.5f});
  // 2x2 -> 1x1: the mean
  auto square = make_image(2, 2, 1, {1, 2, 3, 6});
  CHECK(fg::resize_image(square, 1, 1, fg::ResizeMethod::area, false).pixels[0] ==
        doctest::Approx(3.0));
}

TEST_CASE("image resize: crop_to_aspect_ratio keeps Keras's centred crop") {
  // Keras: crop_h = int(w * th / tw) capped at h, crop_w = int(h * tw / th) capped at w,
  // starts int((h - crop_h) / 2), int((w - crop_w) / 2)
  auto w1 = fg::aspect_ratio_crop(100, 200, 50, 50);
  check_window(w1, 0, 50, 100, 100);
  auto w2 = fg::aspect_ratio_crop(7, 13, 28, 28);  // crop_w = 7, left = int(6 / 2) = 3
  check_window(w2, 0, 3, 7, 7);
  auto w3 = fg::aspect_ratio_crop(13, 7, 4, 3);  // crop_h = int(9.33) = 9, top = int(4 / 2)
  check_window(w3, 2, 0, 9, 7);
  auto w4 = fg::aspect_ratio_crop(1, 9, 5, 1);  // crop_w = int(0.2) = 0 -> at least 1
  check_window(w4, 0, 4, 1, 1);

  const fg::ResizeMethod methods[] = {fg::ResizeMethod::bilinear, fg::ResizeMethod::nearest,
                                      fg::ResizeMethod::area};
  for (auto method : methods) {
    auto im = random_image(13, 7, 3, 77);
    auto got = fg::resize_image(im, 4, 3, method, true);
    auto cropped = fg::ref::crop(to_ref(im), 2, 0, 9, 7);
    check_same(got, reference(cropped, 4, 3, method), 2e-3);
    auto wide = random_image(7, 13, 1, 78);
    check_same(fg::resize_image(wide, 28, 28, method, true),
               reference(fg::ref::crop(to_ref(wide), 0, 3, 7, 7), 28, 28, method), 2e-3);
  }
}

TEST_CASE("image resize: the same size is the identity; bad sizes are errors") {
  auto im = random_image(7, 13, 3, 5);
  CHECK(fg::resize_image(im, 7, 13, fg::ResizeMethod::bilinear, false).pixels == im.pixels);
  CHECK(fg::resize_image(im, 7, 13, fg::ResizeMethod::area, true).pixels == im.pixels);
  CHECK_THROWS_AS(fg::resize_image(im, 0, 4, fg::ResizeMethod::bilinear, false), fg::Error);
  CHECK_THROWS_AS(fg::resize_image(im, 70000, 4, fg::ResizeMethod::nearest, false), fg::Error);
  fg::DecodedImage bad = im;
  bad.pixels.pop_back();
  CHECK_THROWS_AS(fg::resize_image(bad, 3, 3, fg::ResizeMethod::area, false), fg::Error);
}
