// Image files made by the tests at test time: PNGs written with libpng and JPEGs with libjpeg
// (into memory), EXIF APP1 payloads, and the CRC that lets a test patch a PNG header.
#pragma once

#include <doctest/doctest.h>
#include <png.h>

// clang-format off
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>
// clang-format on

#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace fg::test {

struct PngSpec {
  int height = 1, width = 1;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette;   // PNG_COLOR_TYPE_PALETTE
  std::vector<unsigned char> trns;  // palette alpha, optional
};

inline int png_channels(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
      return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return 2;
    case PNG_COLOR_TYPE_RGB:
      return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      return 4;
    default:
      return 1;  // palette: one index per pixel
  }
}

namespace detail {
inline void append_png_bytes(png_structp png, png_bytep data, size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), length);
}
inline void flush_png(png_structp) {}

inline bool write_png_rows(png_structp png, png_infop info, const PngSpec& spec,
                           std::vector<png_bytep>& rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty())
    png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  if (!spec.trns.empty())
    png_set_tRNS(png, info, spec.trns.data(), static_cast<int>(spec.trns.size()), nullptr);
  png_write_info(png, info);
  if (spec.bit_depth < 8) png_set_packing(png);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  return true;
}
}  // namespace detail

// Samples row major, channels interleaved (palette: indices), one value per sample: 0..65535
// for 16 bits, else 0..2^depth - 1.
inline std::string encode_png(const PngSpec& spec, const std::vector<int>& samples) {
  const int channels = png_channels(spec.color_type);
  const size_t per_row = static_cast<size_t>(spec.width) * channels;
  REQUIRE(samples.size() == per_row * spec.height);
  const size_t sample_bytes = spec.bit_depth == 16 ? 2 : 1;
  std::vector<unsigned char> raw(samples.size() * sample_bytes);
  for (size_t i = 0; i < samples.size(); ++i) {
    if (sample_bytes == 2) {
      raw[2 * i] = static_cast<unsigned char>(samples[i] >> 8);
      raw[2 * i + 1] = static_cast<unsigned char>(samples[i] & 0xFF);
    } else {
      raw[i] = static_cast<unsigned char>(samples[i]);
    }
  }
  std::vector<png_bytep> rows(spec.height);
  for (int r = 0; r < spec.height; ++r) rows[r] = raw.data() + r * per_row * sample_bytes;
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, detail::append_png_bytes, detail::flush_png);
  const bool ok = detail::write_png_rows(png, info, spec, rows);
  png_destroy_write_struct(&png, &info);
  REQUIRE(ok);
  return out;
}

struct JpegSpec {
  int height = 1, width = 1;
  int components = 3;
  J_COLOR_SPACE in_space = JCS_RGB;
  bool progressive = false;
  int quality = 95;
  bool adobe_marker = true;       // CMYK only: libjpeg writes one by default
  std::vector<std::string> app1;  // APP1 payloads (e.g. EXIF)
};

namespace detail {
struct JpegWriteErrors {
  jpeg_error_mgr error;
  std::jmp_buf jump;
};
[[noreturn]] inline void on_jpeg_write_error(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegWriteErrors*>(cinfo->err)->jump, 1);
}
inline bool write_jpeg(jpeg_compress_struct& cinfo, const JpegSpec& spec,
                       const std::vector<unsigned char>& samples, unsigned char** buffer,
                       unsigned long* size) {
  if (setjmp(reinterpret_cast<JpegWriteErrors*>(cinfo.err)->jump)) return false;
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = spec.width;
  cinfo.image_height = spec.height;
  cinfo.input_components = spec.components;
  cinfo.in_color_space = spec.in_space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (spec.in_space == JCS_CMYK) cinfo.write_Adobe_marker = spec.adobe_marker ? TRUE : FALSE;
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  for (const auto& payload : spec.app1)
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, reinterpret_cast<const JOCTET*>(payload.data()),
                      static_cast<unsigned>(payload.size()));
  const size_t stride = static_cast<size_t>(spec.width) * spec.components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<unsigned char*>(samples.data()) + stride * cinfo.next_scanline;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  return true;
}
}  // namespace detail

inline std::string encode_jpeg(const JpegSpec& spec, const std::vector<unsigned char>& samples) {
  REQUIRE(samples.size() == static_cast<size_t>(spec.height) * spec.width * spec.components);
  jpeg_compress_struct cinfo{};
  detail::JpegWriteErrors errors;
  cinfo.err = jpeg_std_error(&errors.error);
  errors.error.error_exit = detail::on_jpeg_write_error;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok = detail::write_jpeg(cinfo, spec, samples, &buffer, &size);
  jpeg_destroy_compress(&cinfo);
  std::string out = ok ? std::string(reinterpret_cast<char*>(buffer), size) : std::string();
  std::free(buffer);
  REQUIRE(ok);
  return out;
}

// An EXIF APP1 payload: "Exif\0\0", a TIFF header in the given byte order, IFD0 with an
// ImageDescription-like ASCII tag first (to be skipped) and then Orientation (SHORT, 1).
inline std::string exif_payload(int orientation, bool little_endian) {
  std::string t;
  auto u16 = [&](uint32_t v) {
    if (little_endian) {
      t += static_cast<char>(v & 0xFF), t += static_cast<char>(v >> 8 & 0xFF);
    } else {
      t += static_cast<char>(v >> 8 & 0xFF), t += static_cast<char>(v & 0xFF);
    }
  };
  auto u32 = [&](uint32_t v) {
    if (little_endian) {
      u16(v & 0xFFFF), u16(v >> 16);
    } else {
      u16(v >> 16), u16(v & 0xFFFF);
    }
  };
  t += little_endian ? "II" : "MM";
  u16(42);
  u32(8);                                                     // IFD0 right after the header
  u16(2);                                                     // two entries
  u16(0x010E), u16(2), u32(4), t += std::string("abc\0", 4);  // ASCII, 4 bytes inline
  u16(0x0112), u16(3), u32(1), u16(static_cast<uint32_t>(orientation)), u16(0);
  u32(0);  // no next IFD
  return std::string("Exif\0\0", 6) + t;
}

// CRC-32 as PNG chunks use it (ISO 3309), bit by bit.
inline uint32_t png_crc(const unsigned char* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

// The PNG with its IHDR width and height replaced (and the chunk's CRC recomputed).
inline std::string with_png_size(std::string png, uint32_t height, uint32_t width) {
  auto put32 = [&](size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) png[at + k] = static_cast<char>(v >> (24 - 8 * k) & 0xFF);
  };
  // signature (8), IHDR length (4), "IHDR" (4) at 12, width at 16, height at 20, CRC at 29
  REQUIRE(png.compare(12, 4, "IHDR") == 0);
  put32(16, width);
  put32(20, height);
  put32(29, png_crc(reinterpret_cast<const unsigned char*>(png.data()) + 12, 17));
  return png;
}

}  // namespace fg::test
