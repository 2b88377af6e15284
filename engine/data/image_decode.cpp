// Image files: the choice of decoder by magic bytes, the size limits, and the EXIF orientation
// (parsed from the JPEG APP1 segment here, applied to the decoded pixels). The decoders
// themselves are in image_png.cpp and image_jpeg.cpp.
#include <fmt/format.h>

#include <cstring>

#include "engine/data/image.hpp"
#include "engine/file_io.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

constexpr unsigned char kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr unsigned char kJpegMagic[3] = {0xFF, 0xD8, 0xFF};

std::string leading_bytes(const unsigned char* bytes, size_t size) {
  std::string out;
  for (size_t i = 0; i < size && i < 8; ++i) out += fmt::format("{}{:02x}", i ? " " : "", bytes[i]);
  return out;
}

// Reads TIFF integers in the byte order the EXIF header declares.
struct TiffReader {
  const unsigned char* data;
  size_t size;
  bool little_endian;

  bool fits(size_t offset, size_t bytes) const { return offset <= size && size - offset >= bytes; }
  uint32_t u16(size_t offset) const {
    const unsigned char* p = data + offset;
    return little_endian ? p[0] | (p[1] << 8) : (p[0] << 8) | p[1];
  }
  uint32_t u32(size_t offset) const {
    const unsigned char* p = data + offset;
    return little_endian
               ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
               : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
  }
};

// Where pixel (row, col) of the displayed picture is in the stored one (h x w as stored).
void stored_position(int orientation, int64_t row, int64_t col, int64_t h, int64_t w,
                     int64_t& src_row, int64_t& src_col) {
  switch (orientation) {
    case 2:
      src_row = row, src_col = w - 1 - col;
      break;
    case 3:
      src_row = h - 1 - row, src_col = w - 1 - col;
      break;
    case 4:
      src_row = h - 1 - row, src_col = col;
      break;
    case 5:
      src_row = col, src_col = row;
      break;
    case 6:
      src_row = h - 1 - col, src_col = row;
      break;
    case 7:
      src_row = h - 1 - col, src_col = w - 1 - row;
      break;
    case 8:
      src_row = col, src_col = w - 1 - row;
      break;
    default:
      src_row = row, src_col = col;
      break;
  }
}

}  // namespace

void check_image_dimensions(int64_t height, int64_t width, const std::string& name) {
  if (height < 1 || width < 1)
    throw Error(
        fmt::format("the image is {}x{} pixels (height x width): it has no pixels", height, width))
        .in_file(name);
  if (height > kMaxImageSide || width > kMaxImageSide || height * width > kMaxImagePixels)
    throw Error(fmt::format("the image is {}x{} pixels (height x width), beyond the limit of {} "
                            "pixels per side and {} pixels in all",
                            height, width, kMaxImageSide, kMaxImagePixels))
        .in_file(name)
        .hint("images are refused before decoding when their header declares more (docs/data.md)");
}

DecodedImage decode_image(const unsigned char* bytes, size_t size, const std::string& name) {
  if (size == 0) throw Error("the image file is empty").in_file(name);
  if (size >= sizeof kPngMagic && std::memcmp(bytes, kPngMagic, sizeof kPngMagic) == 0)
    return decode_png(bytes, size, name);
  if (size >= sizeof kJpegMagic && std::memcmp(bytes, kJpegMagic, sizeof kJpegMagic) == 0)
    return decode_jpeg(bytes, size, name);
  throw Error(fmt::format("not a PNG or JPEG file (it starts with the bytes {})",
                          leading_bytes(bytes, size)))
      .in_file(name)
      .hint("images are read as PNG (8 or 16 bits, grey, palette, alpha) or JPEG");
}

DecodedImage decode_image_file(const std::string& path) {
  auto contents = FileContents::read(path, kMaxImageFileBytes);
  return decode_image(contents->data(), contents->size(), path);
}

int exif_orientation(const unsigned char* data, size_t size) {
  static const unsigned char kExifHeader[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (size < sizeof kExifHeader || std::memcmp(data, kExifHeader, sizeof kExifHeader) != 0)
    return 0;
  TiffReader tiff{data + sizeof kExifHeader, size - sizeof kExifHeader, false};
  if (!tiff.fits(0, 8)) return 0;
  if (tiff.data[0] == 'I' && tiff.data[1] == 'I')
    tiff.little_endian = true;
  else if (!(tiff.data[0] == 'M' && tiff.data[1] == 'M'))
    return 0;
  if (tiff.u16(2) != 42) return 0;
  const size_t ifd = tiff.u32(4);
  if (!tiff.fits(ifd, 2)) return 0;
  const uint32_t entries = tiff.u16(ifd);
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t entry = ifd + 2 + size_t{12} * i;
    if (!tiff.fits(entry, 12)) return 0;
    if (tiff.u16(entry) != 0x0112) continue;
    // type SHORT (3), count 1: the value is in the first two bytes of the value field
    if (tiff.u16(entry + 2) != 3 || tiff.u32(entry + 4) != 1) return 0;
    const uint32_t value = tiff.u16(entry + 8);
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 0;
  }
  return 0;
}

DecodedImage apply_orientation(const DecodedImage& src, int orientation) {
  if (orientation < 2 || orientation > 8) return src;
  const bool swaps = orientation >= 5;
  DecodedImage out;
  out.height = swaps ? src.width : src.height;
  out.width = swaps ? src.height : src.width;
  out.channels = src.channels;
  out.pixels.resize(src.pixels.size());
  const size_t c = static_cast<size_t>(src.channels);
  for (int64_t row = 0; row < out.height; ++row)
    for (int64_t col = 0; col < out.width; ++col) {
      int64_t sr = 0, sc = 0;
      stored_position(orientation, row, col, src.height, src.width, sr, sc);
      std::memcpy(&out.pixels[(row * out.width + col) * c], &src.pixels[(sr * src.width + sc) * c],
                  c * sizeof(float));
    }
  return out;
}

}  // namespace fg
