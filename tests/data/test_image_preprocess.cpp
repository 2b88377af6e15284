// Channel conversion (tf.image.rgb_to_grayscale's luma weights, alpha dropped or added as 255),
// rescale / offset / mean / std per channel, and the whole pipeline from a file.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/data/image.hpp"
#include "tests/data/test_image_files.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/reference/image_reference.hpp"

namespace {

fg::DecodedImage pixel_image(int64_t channels, const std::vector<float>& v) {
  fg::DecodedImage im;
  im.height = 1, im.width = static_cast<int64_t>(v.size()) / channels, im.channels = channels;
  im.pixels = v;
  return im;
}

std::vector<float> converted(int64_t from, int64_t to, const std::vector<float>& v) {
  auto out = fg::convert_channels(pixel_image(from, v), to);
  CHECK(out.channels == to);
  return out.pixels;
}

void check_values(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  int reported = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol) && reported++ < 5)
      CHECK_MESSAGE(false, "value " << i << ": got " << got[i] << ", want " << want[i]);
}

}  // namespace

TEST_CASE("channels: grey <-> RGB with the luma weights 0.2989, 0.5870, 0.1140") {
  // 0.2989 * 255 = 76.2195; 0.2989 * 10 + 0.5870 * 20 + 0.1140 * 30 = 18.149
  check_values(converted(3, 1, {255, 0, 0, 10, 20, 30, 0, 0, 255}), {76.2195, 18.149, 29.07}, 1e-4);
  CHECK(converted(1, 3, {7, 200}) == std::vector<float>{7, 7, 7, 200, 200, 200});
  // alpha dropped, not composited
  CHECK(converted(4, 3, {1, 2, 3, 0, 4, 5, 6, 128}) == std::vector<float>{1, 2, 3, 4, 5, 6});
  check_values(converted(4, 1, {10, 20, 30, 0}), {18.149}, 1e-4);
  CHECK(converted(2, 1, {9, 0, 8, 255}) == std::vector<float>{9, 8});
  CHECK(converted(2, 3, {9, 0}) == std::vector<float>{9, 9, 9});
  // alpha added as 255, or kept
  CHECK(converted(3, 4, {1, 2, 3}) == std::vector<float>{1, 2, 3, 255});
  CHECK(converted(1, 4, {5}) == std::vector<float>{5, 5, 5, 255});
  CHECK(converted(2, 4, {5, 60}) == std::vector<float>{5, 5, 5, 60});
  CHECK_THROWS_AS(fg::convert_channels(pixel_image(3, {1, 2, 3}), 5), fg::Error);
}

TEST_CASE("normalize: (v * rescale + offset - mean[c]) / std[c]") {
  fg::ImagePreprocessing config;
  config.channels = 3;
  config.rescale = 1.0 / 255;
  config.offset = -0.1;
  config.mean = {0.485, 0.456, 0.406};
  config.std = {0.229, 0.224, 0.225};
  std::vector<float> v = {0, 128, 255, 17, 99, 201};
  const std::vector<float> original = v;
  fg::normalize_pixels(v.data(), v.size(), 3, config);
  std::vector<double> want;
  for (size_t i = 0; i < original.size(); ++i)
    want.push_back((original[i] / 255.0 - 0.1 - config.mean[i % 3]) / config.std[i % 3]);
  check_values(v, want, 1e-5);

  fg::ImagePreprocessing plain;  // no mean / std: rescale and offset only
  plain.rescale = 2, plain.offset = 1;
  std::vector<float> w = {3, 4};
  fg::normalize_pixels(w.data(), w.size(), 1, plain);
  CHECK(w == std::vector<float>{7, 9});

  config.std = {1, 0, 1};
  CHECK_THROWS_AS(fg::normalize_pixels(v.data(), v.size(), 3, config), fg::Error);
  config.std = {1, 1};
  CHECK_THROWS_AS(fg::normalize_pixels(v.data(), v.size(), 3, config), fg::Error);
}

TEST_CASE("preprocess_image_file: decode, grey, resize and rescale, as the references do") {
  fg::test::TempDir dir;
  const int h = 7, w = 13;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> u(0, 65535);
  std::vector<int> samples(h * w * 4);
  for (auto& s : samples) s = u(rng);
  fg::test::PngSpec spec;
  spec.height = h, spec.width = w, spec.color_type = PNG_COLOR_TYPE_RGB_ALPHA, spec.bit_depth = 16;
  const std::string path = dir.file("sample.png");
  fg::test::write_bytes(path, fg::test::encode_png(spec, samples));

  // the reference: 16-bit -> 8-bit range, alpha dropped, luma, bilinear, rescale
  fg::ref::Image rgb = fg::ref::blank_image(h, w, 3);
  for (int p = 0; p < h * w; ++p)
    for (int k = 0; k < 3; ++k) rgb.v[p * 3 + k] = samples[p * 4 + k] * 255.0 / 65535.0;
  const auto want = fg::ref::resize_bilinear(fg::ref::rgb_to_grey(rgb), 28, 28);

  fg::ImagePreprocessing config;
  config.height = 28, config.width = 28, config.channels = 1;
  config.rescale = 1.0 / 255;
  std::vector<float> out(28 * 28);
  fg::preprocess_image_file(path, config, out.data());
  std::vector<double> scaled;
  for (double v : want.v) scaled.push_back(v / 255.0);
  check_values(out, scaled, 1e-5);

  // RGB, nearest, with the crop: a 7x7 centre window (left = 3)
  config.channels = 3, config.resize = fg::ResizeMethod::nearest,
  config.crop_to_aspect_ratio = true;
  config.rescale = 1.0;
  std::vector<float> out_rgb(28 * 28 * 3);
  fg::preprocess_image_file(path, config, out_rgb.data());
  const auto want_rgb = fg::ref::resize_nearest(fg::ref::crop(rgb, 0, 3, 7, 7), 28, 28);
  check_values(out_rgb, want_rgb.v, 1e-3);
}

TEST_CASE("preprocess_image_file: a damaged or missing file is an error naming it") {
  fg::test::TempDir dir;
  fg::test::PngSpec spec;
  spec.height = 4, spec.width = 4;
  const std::string png = fg::test::encode_png(spec, std::vector<int>(48, 9));
  fg::test::write_bytes(dir.file("cut.png"), png.substr(0, png.size() / 2));
  fg::ImagePreprocessing config;
  config.height = 4, config.width = 4;
  std::vector<float> out(48);
  fg::test::check_error([&] { fg::preprocess_image_file(dir.file("cut.png"), config, out.data()); },
                        {"cut.png", "PNG"});
  fg::test::check_error(
      [&] { fg::preprocess_image_file(dir.file("none.png"), config, out.data()); }, {"none.png"});
  fg::test::write_bytes(dir.file("ok.png"), png);
  config.mean = {1, 2};  // two values for three channels
  fg::test::check_error([&] { fg::preprocess_image_file(dir.file("ok.png"), config, out.data()); },
                        {"ok.png", "mean"});
}
