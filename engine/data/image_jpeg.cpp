// JPEG decoding with libjpeg-turbo (baseline, progressive, arithmetic; grey, YCbCr, RGB, CMYK,
// YCCK). libjpeg reports errors through error_exit, which must not return: ours longjmps back
// into the two small functions below that hold the setjmp, whose frames (and the callbacks)
// own nothing with a destructor; each returns false with libjpeg's message, which the caller
// turns into an fg::Error naming the file. Warnings that mean the data is damaged (a truncated
// file, a bad Huffman code, ...) are errors too: libjpeg would otherwise fill in grey.
#include <fmt/format.h>

// clang-format off
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <csetjmp>
#include <cstring>

#include "engine/data/image.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

constexpr int kMaxJpegScans = 1000;  // progressive files with more are refused (decode time)

// Plain data reachable from libjpeg's callbacks; `error` first, so that the j_common_ptr's
// err field (pointing at it) also points at the whole struct.
struct JpegErrors {
  jpeg_error_mgr error;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

[[noreturn]] void on_jpeg_error(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

bool damaged_data_warning(int code) {
  switch (code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_NOT_SEQUENTIAL:
      return true;
    default:
      return false;
  }
}

void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && damaged_data_warning(cinfo->err->msg_code)) on_jpeg_error(cinfo);
}

void on_jpeg_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
    std::snprintf(errors->message, sizeof errors->message,
                  "more than %d progressive scans (refused)", kMaxJpegScans);
    std::longjmp(errors->jump, 1);
  }
}

bool read_jpeg_header(j_decompress_ptr cinfo, JpegErrors& errors, const unsigned char* bytes,
                      size_t size) {
  if (setjmp(errors.jump)) return false;
  jpeg_create_decompress(cinfo);
  cinfo->progress = &errors.progress;
  jpeg_mem_src(cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(cinfo, TRUE);
  return true;
}

bool read_jpeg_rows(j_decompress_ptr cinfo, JpegErrors& errors, unsigned char* raw,
                    size_t row_bytes, size_t rows) {
  if (setjmp(errors.jump)) return false;
  jpeg_start_decompress(cinfo);
  if (cinfo->output_components * static_cast<size_t>(cinfo->output_width) != row_bytes ||
      cinfo->output_height != rows) {
    std::snprintf(errors.message, sizeof errors.message, "unexpected output layout");
    return false;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = raw + row_bytes * cinfo->output_scanline;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      std::snprintf(errors.message, sizeof errors.message, "no more scanlines (truncated)");
      return false;
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

struct JpegDecompressor {
  jpeg_decompress_struct cinfo{};  // zeroed: destroying it before it is created is safe
  JpegErrors errors{};
  ~JpegDecompressor() { jpeg_destroy_decompress(&cinfo); }
};

Error jpeg_error_for(const std::string& name, const JpegErrors& errors) {
  return Error(fmt::format("cannot decode the JPEG image: {}", errors.message)).in_file(name);
}

// Huffman-coded scans spend at least one bit per block of every component they carry: a file
// too small for the blocks of its smallest component is truncated or corrupt, and is refused
// before the pixels are allocated. (Arithmetic coding has no such bound.)
void check_jpeg_size(const jpeg_decompress_struct& cinfo, size_t size, const std::string& name) {
  if (cinfo.arith_code || cinfo.num_components < 1) return;
  double fewest_blocks = -1;
  for (int c = 0; c < cinfo.num_components; ++c) {
    const double blocks = static_cast<double>(cinfo.comp_info[c].width_in_blocks) *
                          cinfo.comp_info[c].height_in_blocks;
    if (fewest_blocks < 0 || blocks < fewest_blocks) fewest_blocks = blocks;
  }
  if (fewest_blocks > 8.0 * static_cast<double>(size) + 64.0)
    throw Error(fmt::format("cannot decode the JPEG image: {} bytes cannot hold the {}x{} pixels "
                            "its header declares (truncated or corrupt)",
                            size, cinfo.image_height, cinfo.image_width))
        .in_file(name);
}

int orientation_of(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1) {
      const int orientation = exif_orientation(m->data, m->data_length);
      if (orientation) return orientation;
    }
  return 1;
}

// CMYK (and YCCK, which libjpeg converts to CMYK) to RGB as TensorFlow's decode_jpeg: Adobe
// files store inverted CMYK.
void cmyk_to_rgb(const unsigned char* cmyk, size_t pixels, bool adobe, float* rgb) {
  for (size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const int c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
    if (adobe) {
      rgb[0] = static_cast<float>(k * c / 255);
      rgb[1] = static_cast<float>(k * m / 255);
      rgb[2] = static_cast<float>(k * y / 255);
    } else {
      rgb[0] = static_cast<float>((255 - k) * (255 - c) / 255);
      rgb[1] = static_cast<float>((255 - k) * (255 - m) / 255);
      rgb[2] = static_cast<float>((255 - k) * (255 - y) / 255);
    }
  }
}

}  // namespace

DecodedImage decode_jpeg(const unsigned char* bytes, size_t size, const std::string& name) {
  JpegDecompressor d;
  d.cinfo.err = jpeg_std_error(&d.errors.error);
  d.errors.error.error_exit = on_jpeg_error;
  d.errors.error.emit_message = on_jpeg_message;
  d.errors.progress = jpeg_progress_mgr{};
  d.errors.progress.progress_monitor = on_jpeg_progress;
  d.errors.message[0] = 0;
  if (!read_jpeg_header(&d.cinfo, d.errors, bytes, size)) throw jpeg_error_for(name, d.errors);
  check_image_dimensions(d.cinfo.image_height, d.cinfo.image_width, name);
  check_jpeg_size(d.cinfo, size, name);
  const int orientation = orientation_of(d.cinfo);  // saved markers are freed when finishing

  const J_COLOR_SPACE space = d.cinfo.jpeg_color_space;
  const bool grey = space == JCS_GRAYSCALE;
  const bool cmyk = space == JCS_CMYK || space == JCS_YCCK;
  d.cinfo.out_color_space = grey ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
  const size_t components = grey ? 1 : cmyk ? 4 : 3;
  const size_t row_bytes = components * d.cinfo.image_width;
  std::vector<unsigned char> raw(row_bytes * d.cinfo.image_height);
  if (!read_jpeg_rows(&d.cinfo, d.errors, raw.data(), row_bytes, d.cinfo.image_height))
    throw jpeg_error_for(name, d.errors);

  DecodedImage image;
  image.height = d.cinfo.output_height;
  image.width = d.cinfo.output_width;
  image.channels = cmyk ? 3 : static_cast<int64_t>(components);
  image.pixels.resize(static_cast<size_t>(image.height * image.width * image.channels));
  if (cmyk)
    cmyk_to_rgb(raw.data(), image.height * image.width, d.cinfo.saw_Adobe_marker,
                image.pixels.data());
  else
    for (size_t i = 0; i < raw.size(); ++i) image.pixels[i] = raw[i];
  return apply_orientation(image, orientation);
}

}  // namespace fg
