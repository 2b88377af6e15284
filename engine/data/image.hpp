// Images: PNG and JPEG files decoded (libpng, libjpeg-turbo), resized as Keras's `Resizing`,
// channels converted, rescaled and normalized into a graph input (docs/data.md, "Images").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/preprocessing.hpp"

namespace fg {

// Pixels row major, channels last, as floats in the 8-bit range [0, 255] (16-bit samples are
// scaled: v * 255 / 65535). channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (palettes expanded).
struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<float> pixels;  // height * width * channels
};

// Decodes PNG (8/16-bit, grey, palette, alpha, interlaced) or JPEG (baseline, progressive,
// grey, CMYK; EXIF orientation applied) by the file's magic bytes. Throws fg::Error naming
// `name` (the file) and the decoder's own message for a truncated, corrupt or unknown file.
DecodedImage decode_image(const unsigned char* bytes, size_t size, const std::string& name);
DecodedImage decode_image_file(const std::string& path);

// Channel conversion: grey -> RGB replicates; RGB -> grey with TensorFlow's rgb_to_grayscale
// weights (0.2989, 0.5870, 0.1140); alpha dropped (not composited) or added as 255.
DecodedImage convert_channels(const DecodedImage& src, int64_t channels);

// Keras `Resizing` (tf.image.resize, antialias off; bilinear with half-pixel centres, nearest,
// area), with crop_to_aspect_ratio taking the centred largest crop of the target's ratio first.
DecodedImage resize_image(const DecodedImage& src, int64_t height, int64_t width,
                          ResizeMethod method, bool crop_to_aspect_ratio);

// The whole pipeline for one sample: decode, convert channels, resize, then rescale / offset /
// mean / std. Writes height * width * channels floats to dst. Throws fg::Error naming the file.
void preprocess_image_file(const std::string& path, const ImagePreprocessing& config, float* dst);

// ---- Parts of the above, for the pipeline and the tests ----

// Limits for untrusted files, checked from the file's header before any pixel is allocated.
constexpr int64_t kMaxImageSide = 65535;  // pixels per side
// height * width: 2^25 (33.5 megapixels, e.g. 8192 x 4096) keeps one decoded picture's floats
// under 512 MiB even with 4 channels, so that a small file cannot make a worker allocate GiBs.
constexpr int64_t kMaxImagePixels = int64_t{1} << 25;
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 30;
// Throws fg::Error naming `name` when a side is below 1 or above kMaxImageSide, or the
// picture has more than kMaxImagePixels pixels.
void check_image_dimensions(int64_t height, int64_t width, const std::string& name);

// The two decoders decode_image picks from (by magic bytes). JPEG output has 1 (grey) or 3
// channels (YCbCr, RGB; CMYK and YCCK converted as TensorFlow's decode_jpeg does), with the
// EXIF orientation applied; PNG output has the file's channels (palette -> RGB or RGBA).
DecodedImage decode_png(const unsigned char* bytes, size_t size, const std::string& name);
DecodedImage decode_jpeg(const unsigned char* bytes, size_t size, const std::string& name);

// The EXIF orientation (1-8) in the payload of a JPEG APP1 segment ("Exif\0\0", then a TIFF
// header and IFD0 with tag 0x0112); 0 when the payload is not EXIF, has no orientation tag or
// an invalid one. Never reads outside [data, data + size).
int exif_orientation(const unsigned char* data, size_t size);
// The picture as it is meant to be displayed, for an EXIF orientation: 1 as stored, 2 mirrored
// left-right, 3 rotated 180 degrees, 4 mirrored top-bottom, 5 transposed, 6 rotated 90 degrees
// clockwise, 7 transversed, 8 rotated 90 degrees counter-clockwise (5-8 swap height and width).
DecodedImage apply_orientation(const DecodedImage& src, int orientation);

// The window Keras's Resizing(crop_to_aspect_ratio=True) keeps of a height x width picture
// for a target_height x target_width output: the centred largest crop of the target's ratio.
struct CropWindow {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
CropWindow aspect_ratio_crop(int64_t height, int64_t width, int64_t target_height,
                             int64_t target_width);

// v -> (v * rescale + offset - mean[c]) / std[c] over height * width * channels values
// (channels last), in place.
void normalize_pixels(float* values, size_t count, int64_t channels,
                      const ImagePreprocessing& config);

}  // namespace fg
