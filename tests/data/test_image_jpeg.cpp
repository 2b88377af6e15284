// JPEG decoding: files written by libjpeg in the test (baseline, progressive, grey, CMYK with
// and without the Adobe marker, EXIF orientations 1-8). JPEG is lossy, so pictures are blocks
// of flat colour on the 16x16 MCU grid or smooth gradients, compared within tolerances.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/data/image.hpp"
#include "tests/data/test_image_files.hpp"

namespace {

struct Rgb {
  int r, g, b;
};

// Stored picture for the orientation test: 2 x 3 blocks of 16x16 pixels,
//   A B C
//   D E F
const Rgb kBlocks[6] = {{200, 30, 30},  {30, 200, 30},  {30, 30, 200},
                        {220, 220, 40}, {40, 220, 220}, {128, 128, 128}};

std::vector<unsigned char> block_picture(int block_rows, int block_cols, const Rgb* colours) {
  std::vector<unsigned char> v;
  for (int y = 0; y < block_rows * 16; ++y)
    for (int x = 0; x < block_cols * 16; ++x) {
      const Rgb& c = colours[(y / 16) * block_cols + x / 16];
      v.insert(v.end(), {static_cast<unsigned char>(c.r), static_cast<unsigned char>(c.g),
                         static_cast<unsigned char>(c.b)});
    }
  return v;
}

fg::DecodedImage decode(const std::string& bytes, const std::string& name = "test.jpg") {
  return fg::decode_image(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), name);
}

// The centre pixel of block (row, col) is within `tol` of the colour.
void check_block(const fg::DecodedImage& im, int row, int col, const Rgb& want, double tol) {
  const int64_t y = row * 16 + 8, x = col * 16 + 8;
  const float* p = &im.pixels[static_cast<size_t>((y * im.width + x) * im.channels)];
  CHECK(std::fabs(p[0] - want.r) <= tol);
  CHECK(std::fabs(p[1] - want.g) <= tol);
  CHECK(std::fabs(p[2] - want.b) <= tol);
}

std::vector<unsigned char> gradient_rgb(int h, int w) {
  std::vector<unsigned char> v;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      v.insert(v.end(), {static_cast<unsigned char>(40 + 3 * y),
                         static_cast<unsigned char>(20 + 4 * x), static_cast<unsigned char>(128)});
  return v;
}

void check_close_to(const fg::DecodedImage& got, const std::vector<unsigned char>& want,
                    double max_error, double mean_error) {
  REQUIRE(got.pixels.size() == want.size());
  double worst = 0, sum = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(got.pixels[i] - want[i]);
    worst = std::max(worst, e), sum += e;
  }
  CHECK(worst <= max_error);
  CHECK(sum / want.size() <= mean_error);
}

}  // namespace

TEST_CASE("JPEG: baseline and progressive RGB at odd sizes decode close to the source") {
  const int h = 37, w = 53;
  const auto rgb = gradient_rgb(h, w);
  fg::test::JpegSpec spec;
  spec.height = h, spec.width = w;
  const auto baseline = decode(fg::test::encode_jpeg(spec, rgb));
  REQUIRE(baseline.height == h);
  REQUIRE(baseline.width == w);
  REQUIRE(baseline.channels == 3);
  check_close_to(baseline, rgb, 12, 2.0);
  spec.progressive = true;
  const auto progressive = decode(fg::test::encode_jpeg(spec, rgb));
  // the same quantized coefficients, sent in several scans: the same pixels
  CHECK(progressive.pixels == baseline.pixels);
}

TEST_CASE("JPEG: greyscale files decode to one channel") {
  const int h = 13, w = 29;
  std::vector<unsigned char> grey;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) grey.push_back(static_cast<unsigned char>(10 + 6 * x + 2 * y));
  for (bool progressive : {false, true}) {
    fg::test::JpegSpec spec;
    spec.height = h, spec.width = w, spec.components = 1, spec.in_space = JCS_GRAYSCALE;
    spec.progressive = progressive;
    const auto got = decode(fg::test::encode_jpeg(spec, grey));
    REQUIRE(got.channels == 1);
    REQUIRE(got.height == h);
    check_close_to(got, grey, 8, 1.5);
  }
}

TEST_CASE("JPEG: CMYK converted as TensorFlow's decode_jpeg (Adobe files store it inverted)") {
  const unsigned char cmyk_blocks[4][4] = {
      {255, 0, 0, 255}, {0, 255, 128, 255}, {200, 100, 50, 128}, {255, 255, 255, 40}};
  std::vector<unsigned char> cmyk;
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 64; ++x)
      cmyk.insert(cmyk.end(), cmyk_blocks[x / 16], cmyk_blocks[x / 16] + 4);
  for (bool adobe : {true, false}) {
    fg::test::JpegSpec spec;
    spec.height = 16, spec.width = 64, spec.components = 4, spec.in_space = JCS_CMYK;
    spec.adobe_marker = adobe;
    const auto got = decode(fg::test::encode_jpeg(spec, cmyk));
    REQUIRE(got.channels == 3);
    for (int b = 0; b < 4; ++b) {
      const int c = cmyk_blocks[b][0], m = cmyk_blocks[b][1], y = cmyk_blocks[b][2],
                k = cmyk_blocks[b][3];
      // Adobe: r = k c / 255; otherwise r = (255 - k)(255 - c) / 255
      const Rgb want = adobe ? Rgb{k * c / 255, k * m / 255, k * y / 255}
                             : Rgb{(255 - k) * (255 - c) / 255, (255 - k) * (255 - m) / 255,
                                   (255 - k) * (255 - y) / 255};
      CAPTURE(adobe);
      CAPTURE(b);
      check_block(got, 0, b, want, 6);
    }
  }
  // block 0 with the Adobe marker is red
  fg::test::JpegSpec spec;
  spec.height = 16, spec.width = 64, spec.components = 4, spec.in_space = JCS_CMYK;
  check_block(decode(fg::test::encode_jpeg(spec, cmyk)), 0, 0, Rgb{255, 0, 0}, 6);
}

TEST_CASE("JPEG: EXIF orientations 1-8 turn the stored picture as it is meant to be seen") {
  // Expected block layouts, derived by hand from the EXIF definitions (stored: A B C / D E F;
  // 6 = rotate 90 degrees clockwise, 8 = counter-clockwise, 5 = transpose, 7 = transverse).
  struct Layout {
    int rows, cols;
    const char* blocks;
  };
  const Layout kWant[9] = {{0, 0, ""},       {2, 3, "ABCDEF"}, {2, 3, "CBAFED"},
                           {2, 3, "FEDCBA"}, {2, 3, "DEFABC"}, {3, 2, "ADBECF"},
                           {3, 2, "DAEBFC"}, {3, 2, "FCEBDA"}, {3, 2, "CFBEAD"}};
  const auto stored = block_picture(2, 3, kBlocks);
  for (int orientation = 1; orientation <= 8; ++orientation)
    for (bool little_endian : {true, false}) {
      fg::test::JpegSpec spec;
      spec.height = 32, spec.width = 48;
      spec.app1 = {fg::test::exif_payload(orientation, little_endian)};
      const auto got = decode(fg::test::encode_jpeg(spec, stored));
      const Layout& want = kWant[orientation];
      CAPTURE(orientation);
      CAPTURE(little_endian);
      REQUIRE(got.height == want.rows * 16);
      REQUIRE(got.width == want.cols * 16);
      for (int r = 0; r < want.rows; ++r)
        for (int c = 0; c < want.cols; ++c)
          check_block(got, r, c, kBlocks[want.blocks[r * want.cols + c] - 'A'], 10);
    }
}

TEST_CASE("EXIF: the orientation parser reads both byte orders and refuses bad segments") {
  auto orientation = [](const std::string& s) {
    return fg::exif_orientation(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  for (int v = 1; v <= 8; ++v) {
    CHECK(orientation(fg::test::exif_payload(v, true)) == v);
    CHECK(orientation(fg::test::exif_payload(v, false)) == v);
  }
  CHECK(orientation(fg::test::exif_payload(0, true)) == 0);  // out of range
  CHECK(orientation(fg::test::exif_payload(9, false)) == 0);
  const std::string good = fg::test::exif_payload(6, false);
  for (size_t cut = 0; cut + 1 < good.size(); ++cut) {
    // the orientation entry (12 bytes) ends at byte 6 + 8 + 2 + 12 + 12 = 40
    CAPTURE(cut);
    CHECK(orientation(good.substr(0, cut)) == (cut >= 40 ? 6 : 0));
  }
  std::string xmp = "http://ns.adobe.com/xap/1.0/";
  xmp.push_back('\0');
  CHECK(orientation(xmp) == 0);
  std::string bad_order = good;
  bad_order[6] = 'X';
  CHECK(orientation(bad_order) == 0);
  std::string far_ifd = good;  // IFD0 offset 0x7FFFFFF0: beyond the segment
  far_ifd[10] = 0x7F, far_ifd[11] = char(0xFF), far_ifd[12] = char(0xFF), far_ifd[13] = char(0xF0);
  CHECK(orientation(far_ifd) == 0);
  std::string many_entries = good;  // 65535 entries claimed, two present
  many_entries[14] = char(0xFF), many_entries[15] = char(0xFF);
  CHECK(orientation(many_entries) == 6);  // found before the claimed entries run out
  many_entries[16] = 0x7F;                // first entry not orientation, second scrambled
  many_entries[28] = 0x7F;
  CHECK(orientation(many_entries) == 0);
}
