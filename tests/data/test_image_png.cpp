// PNG decoding: files written by libpng in the test (8-bit grey / grey+alpha / RGB / RGBA,
// 16-bit, 1/2/4-bit grey, palette with and without transparency, interlaced), decoded
// exactly (PNG is lossless): every sample compared with what was written.
#include <doctest/doctest.h>

#include <random>

#include "engine/data/image.hpp"
#include "tests/data/test_image_files.hpp"
#include "tests/io/io_test_util.hpp"

namespace {

std::vector<int> random_samples(size_t n, int max_value, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, max_value);
  std::vector<int> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

fg::DecodedImage decode(const std::string& bytes, const std::string& name = "test.png") {
  return fg::decode_image(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), name);
}

void check_pixels(const fg::DecodedImage& got, int64_t h, int64_t w, int64_t c,
                  const std::vector<double>& want) {
  REQUIRE(got.height == h);
  REQUIRE(got.width == w);
  REQUIRE(got.channels == c);
  REQUIRE(got.pixels.size() == want.size());
  int reported = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got.pixels[i] - want[i]) <= 1e-4) && reported++ < 5)
      CHECK_MESSAGE(false, "sample " << i << ": got " << got.pixels[i] << ", want " << want[i]);
}

std::vector<double> as_doubles(const std::vector<int>& v, double scale = 1.0) {
  std::vector<double> out;
  for (int x : v) out.push_back(x * scale);
  return out;
}

}  // namespace

TEST_CASE("PNG: 8-bit grey, grey+alpha, RGB and RGBA, plain and interlaced, exactly") {
  const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                       PNG_COLOR_TYPE_RGB_ALPHA};
  unsigned seed = 10;
  for (int type : types)
    for (bool interlaced : {false, true}) {
      fg::test::PngSpec spec;
      spec.height = 13, spec.width = 7, spec.color_type = type, spec.interlaced = interlaced;
      const int c = fg::test::png_channels(type);
      CAPTURE(type);
      CAPTURE(interlaced);
      auto samples = random_samples(13 * 7 * c, 255, seed++);
      check_pixels(decode(fg::test::encode_png(spec, samples)), 13, 7, c, as_doubles(samples));
    }
}

TEST_CASE("PNG: 16-bit samples are scaled to the 8-bit range (v * 255 / 65535)") {
  for (int type : {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_RGB_ALPHA})
    for (bool interlaced : {false, true}) {
      fg::test::PngSpec spec;
      spec.height = 5, spec.width = 11, spec.color_type = type, spec.bit_depth = 16;
      spec.interlaced = interlaced;
      const int c = fg::test::png_channels(type);
      auto samples = random_samples(5 * 11 * c, 65535, 40 + type);
      samples[0] = 65535, samples[1] = 257, samples[2] = 0;  // 255, 1, 0
      auto got = decode(fg::test::encode_png(spec, samples));
      check_pixels(got, 5, 11, c, as_doubles(samples, 255.0 / 65535.0));
      CHECK(got.pixels[0] == doctest::Approx(255.0));
      CHECK(got.pixels[1] == doctest::Approx(1.0));
    }
}

TEST_CASE("PNG: 1, 2 and 4-bit grey are expanded to the 8-bit range") {
  for (int depth : {1, 2, 4}) {
    fg::test::PngSpec spec;
    spec.height = 3, spec.width = 9, spec.color_type = PNG_COLOR_TYPE_GRAY, spec.bit_depth = depth;
    const int max_value = (1 << depth) - 1;
    auto samples = random_samples(27, max_value, 60 + depth);
    // libpng scales low-depth grey by replicating the bits: v * 255 / (2^depth - 1)
    check_pixels(decode(fg::test::encode_png(spec, samples)), 3, 9, 1,
                 as_doubles(samples, 255.0 / max_value));
  }
}

TEST_CASE("PNG: palettes become RGB, or RGBA with a tRNS chunk") {
  std::vector<png_color> palette = {{255, 0, 0}, {0, 128, 0}, {10, 20, 30}, {200, 201, 202}};
  fg::test::PngSpec spec;
  spec.height = 4, spec.width = 3, spec.color_type = PNG_COLOR_TYPE_PALETTE;
  spec.palette = palette;
  const std::vector<int> indices = {0, 1, 2, 3, 3, 2, 1, 0, 2, 2, 0, 1};
  std::vector<double> rgb, rgba;
  const std::vector<unsigned char> alpha = {0, 100, 255, 255};
  for (int i : indices) {
    rgb.insert(rgb.end(),
               {double(palette[i].red), double(palette[i].green), double(palette[i].blue)});
    rgba.insert(rgba.end(), {double(palette[i].red), double(palette[i].green),
                             double(palette[i].blue), double(alpha[i])});
  }
  check_pixels(decode(fg::test::encode_png(spec, indices)), 4, 3, 3, rgb);
  spec.trns = alpha;
  spec.interlaced = true;
  check_pixels(decode(fg::test::encode_png(spec, indices)), 4, 3, 4, rgba);
}

TEST_CASE("PNG: decode_image_file reads a file; a missing file is an error naming it") {
  fg::test::TempDir dir;
  fg::test::PngSpec spec;
  spec.height = 2, spec.width = 2;
  const std::vector<int> samples = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  fg::test::write_bytes(dir.file("a.png"), fg::test::encode_png(spec, samples));
  check_pixels(fg::decode_image_file(dir.file("a.png")), 2, 2, 3, as_doubles(samples));
  fg::test::check_error([&] { fg::decode_image_file(dir.file("missing.png")); }, {"missing.png"});
}
