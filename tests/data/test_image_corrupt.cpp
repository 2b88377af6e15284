// Untrusted image files: truncated at many lengths, bytes flipped, headers declaring huge
// pictures, files that are no image. Each is an fg::Error naming the file (never a crash, an
// abort or a read out of bounds: these tests also run under the ASan build).
#include <doctest/doctest.h>

#include <random>

#include "engine/data/image.hpp"
#include "tests/data/test_image_files.hpp"
#include "tests/io/io_test_util.hpp"

namespace {

fg::DecodedImage decode(const std::string& bytes, const std::string& name) {
  return fg::decode_image(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), name);
}

std::vector<int> random_ints(size_t n, int max_value, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, max_value);
  std::vector<int> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

std::vector<unsigned char> random_bytes(size_t n, unsigned seed) {
  std::vector<unsigned char> v;
  for (int x : random_ints(n, 255, seed)) v.push_back(static_cast<unsigned char>(x));
  return v;
}

// name -> a valid file of that kind
std::vector<std::pair<std::string, std::string>> sample_files() {
  std::vector<std::pair<std::string, std::string>> files;
  fg::test::PngSpec png;
  png.height = 9, png.width = 13;
  files.emplace_back("plain.png", fg::test::encode_png(png, random_ints(9 * 13 * 3, 255, 1)));
  png.interlaced = true, png.bit_depth = 16, png.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  files.emplace_back("interlaced16.png",
                     fg::test::encode_png(png, random_ints(9 * 13 * 2, 65535, 2)));
  fg::test::JpegSpec jpeg;
  jpeg.height = 24, jpeg.width = 40;
  jpeg.app1 = {fg::test::exif_payload(6, true)};
  const auto pixels = random_bytes(24 * 40 * 3, 3);
  files.emplace_back("baseline.jpg", fg::test::encode_jpeg(jpeg, pixels));
  jpeg.progressive = true;
  files.emplace_back("progressive.jpg", fg::test::encode_jpeg(jpeg, pixels));
  return files;
}

// Decoding either succeeds with a consistent picture or throws an fg::Error naming the file.
void decode_or_error(const std::string& bytes, const std::string& name) {
  try {
    const auto im = decode(bytes, name);
    CHECK(im.pixels.size() == static_cast<size_t>(im.height * im.width * im.channels));
  } catch (const fg::Error& e) {
    CHECK(std::string(e.what()).find(name) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("image files cut short at any of many lengths are errors naming the file") {
  for (const auto& [name, bytes] : sample_files()) {
    REQUIRE_NOTHROW(decode(bytes, name));
    std::vector<size_t> cuts = {0, 1, 2, 3, 4, 7, 8, 9, 16, 20, 33, 40, 64};
    for (size_t k = 1; k < 16; ++k) cuts.push_back(bytes.size() * k / 16);
    for (size_t k = 1; k <= 12; ++k) cuts.push_back(bytes.size() - k);
    for (size_t cut : cuts) {
      CAPTURE(name);
      CAPTURE(cut);
      fg::test::check_error([&] { decode(bytes.substr(0, cut), name); }, {name});
    }
  }
}

TEST_CASE("image files with flipped bytes decode or fail with an error, never crash") {
  std::mt19937 rng(99);
  int errors = 0, decoded = 0;
  for (const auto& [name, bytes] : sample_files())
    for (size_t at = 0; at < bytes.size(); at += 1 + rng() % 5) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ (1 + rng() % 255));
      try {
        decode(damaged, name);
        ++decoded;
      } catch (const fg::Error& e) {
        ++errors;
        CHECK(std::string(e.what()).find(name) != std::string::npos);
      }
    }
  CHECK(errors > 0);
  MESSAGE(errors << " damaged files refused, " << decoded << " decoded");
  // random garbage after each magic
  for (const std::string& magic : {std::string("\x89PNG\r\n\x1a\n"), std::string("\xff\xd8\xff")})
    for (unsigned seed = 0; seed < 50; ++seed) {
      const auto tail = random_bytes(1 + seed * 7, seed);
      decode_or_error(magic + std::string(tail.begin(), tail.end()), "garbage");
    }
}

TEST_CASE("PNG headers declaring huge pictures are refused before the pixels are allocated") {
  fg::test::PngSpec spec;
  spec.height = 3, spec.width = 5, spec.color_type = PNG_COLOR_TYPE_GRAY;
  const std::string small = fg::test::encode_png(spec, random_ints(15, 255, 4));
  fg::test::check_error([&] { decode(fg::test::with_png_size(small, 3, 70000), "wide.png"); },
                        {"wide.png", "3x70000", "65535"});
  fg::test::check_error([&] { decode(fg::test::with_png_size(small, 65535, 65535), "big.png"); },
                        {"big.png", "268435456"});
  // within the limits, but far more pixels than a file this small can hold
  fg::test::check_error([&] { decode(fg::test::with_png_size(small, 16000, 16000), "bomb.png"); },
                        {"bomb.png", "cannot hold", "16000x16000"});
  fg::test::check_error([&] { decode(fg::test::with_png_size(small, 0, 5), "zero.png"); },
                        {"zero.png"});
  // a real 1 x 70000 file, small since it compresses well
  spec.height = 1, spec.width = 70000;
  const std::string wide = fg::test::encode_png(spec, std::vector<int>(70000, 7));
  fg::test::check_error([&] { decode(wide, "real_wide.png"); }, {"real_wide.png", "1x70000"});
}

TEST_CASE("JPEG headers declaring huge pictures are refused before the pixels are allocated") {
  fg::test::JpegSpec spec;
  spec.height = 16, spec.width = 16;
  const std::string small = fg::test::encode_jpeg(spec, random_bytes(16 * 16 * 3, 5));
  const size_t sof = small.find("\xff\xc0");
  REQUIRE(sof != std::string::npos);
  auto with_size = [&](unsigned h, unsigned w) {
    std::string s = small;  // FF C0, length (2), precision (1), height (2), width (2)
    s[sof + 5] = static_cast<char>(h >> 8), s[sof + 6] = static_cast<char>(h & 0xFF);
    s[sof + 7] = static_cast<char>(w >> 8), s[sof + 8] = static_cast<char>(w & 0xFF);
    return s;
  };
  fg::test::check_error([&] { decode(with_size(60000, 60000), "huge.jpg"); },
                        {"huge.jpg", "60000x60000", "268435456"});
  fg::test::check_error([&] { decode(with_size(16000, 16000), "bomb.jpg"); },
                        {"bomb.jpg", "cannot hold", "16000x16000"});
  fg::test::check_error([&] { decode(with_size(0, 16), "zero.jpg"); }, {"zero.jpg"});
}

TEST_CASE("files that are no PNG or JPEG are errors naming the file and their first bytes") {
  fg::test::check_error([] { decode("", "empty.png"); }, {"empty.png", "empty"});
  fg::test::check_error([] { decode("GIF89a....", "anim.gif"); },
                        {"anim.gif", "not a PNG or JPEG", "47 49 46 38"});
  fg::test::check_error([] { decode("\x89PN", "short.png"); }, {"short.png"});
  fg::test::TempDir dir;
  fg::test::check_error([&] { fg::decode_image_file(dir.path().string()); }, {"directory"});
}
