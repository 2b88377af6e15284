// PNG decoding with libpng. libpng reports errors by longjmp: every libpng call is made from
// the two small functions below that hold the setjmp, whose frames (and the callbacks libpng
// calls) own nothing with a destructor, so a longjmp skips no C++ object; each returns false
// with libpng's message, which the caller turns into an fg::Error naming the file.
#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "engine/data/image.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

// Plain data reachable from libpng's callbacks.
struct PngSource {
  const unsigned char* bytes = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {};
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(source->message, sizeof source->message, "%s", message ? message : "error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // ancillary problems: the pixels are fine

void read_png_bytes(png_structp png, png_bytep out, size_t length) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (length > source->size - source->pos) png_error(png, "the file ends early (truncated)");
  std::memcpy(out, source->bytes + source->pos, length);
  source->pos += length;
}

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int file_bit_depth = 0, file_channels = 0;
  int bit_depth = 0, channels = 0;  // after the expansions
  size_t row_bytes = 0;
};

// png_read_info and the transformations: palette -> RGB, grey below 8 bits -> 8, tRNS ->
// alpha; 16-bit samples kept; interlaced passes combined by libpng.
bool read_png_header(png_structp png, png_infop info, PngHeader& header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);  // the limits are ours (checked after)
  png_read_info(png, info);
  header.width = png_get_image_width(png, info);
  header.height = png_get_image_height(png, info);
  header.file_bit_depth = png_get_bit_depth(png, info);
  header.file_channels = png_get_channels(png, info);
  png_set_expand(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  header.bit_depth = png_get_bit_depth(png, info);
  header.channels = png_get_channels(png, info);
  header.row_bytes = png_get_rowbytes(png, info);
  return true;
}

bool read_png_rows(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

struct PngStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngStructs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

Error png_error_for(const std::string& name, const PngSource& source) {
  return Error(fmt::format("cannot decode the PNG image: {}", source.message)).in_file(name);
}

// Deflate expands at most 1032 times: a file too small for its declared pixels is truncated
// or corrupt, and is refused before the pixels are allocated.
void check_png_size(const PngHeader& h, size_t file_size, const std::string& name) {
  const double pixel_bytes =
      static_cast<double>(h.height) * h.width * h.file_channels * h.file_bit_depth / 8.0;
  if (pixel_bytes > 1032.0 * static_cast<double>(file_size) + 1024.0)
    throw Error(fmt::format("cannot decode the PNG image: {} bytes cannot hold the {}x{} pixels "
                            "its header declares (truncated or corrupt)",
                            file_size, h.height, h.width))
        .in_file(name);
}

void png_samples_to_floats(const std::vector<unsigned char>& raw, int bit_depth,
                           std::vector<float>& out) {
  if (bit_depth == 16) {
    out.resize(raw.size() / 2);
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<float>((raw[2 * i] << 8 | raw[2 * i + 1]) * 255.0 / 65535.0);
  } else {
    out.resize(raw.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = raw[i];
  }
}

}  // namespace

DecodedImage decode_png(const unsigned char* bytes, size_t size, const std::string& name) {
  PngSource source;
  source.bytes = bytes;
  source.size = size;
  PngStructs s;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  if (!s.png || !s.info)
    throw Error("cannot decode the PNG image: libpng could not be initialised").in_file(name);
  png_set_read_fn(s.png, &source, read_png_bytes);

  PngHeader header;
  if (!read_png_header(s.png, s.info, header)) throw png_error_for(name, source);
  check_image_dimensions(header.height, header.width, name);
  check_png_size(header, size, name);
  if ((header.bit_depth != 8 && header.bit_depth != 16) || header.channels < 1 ||
      header.channels > 4 ||
      header.row_bytes != size_t{header.width} * header.channels * (header.bit_depth / 8))
    throw Error(fmt::format("cannot decode the PNG image: unexpected layout ({} channels of {} "
                            "bits)",
                            header.channels, header.bit_depth))
        .in_file(name);

  std::vector<unsigned char> raw(header.row_bytes * header.height);
  std::vector<png_bytep> rows(header.height);
  for (png_uint_32 r = 0; r < header.height; ++r) rows[r] = raw.data() + r * header.row_bytes;
  if (!read_png_rows(s.png, s.info, rows.data())) throw png_error_for(name, source);

  DecodedImage image;
  image.height = header.height;
  image.width = header.width;
  image.channels = header.channels;
  png_samples_to_floats(raw, header.bit_depth, image.pixels);
  return image;
}

}  // namespace fg
