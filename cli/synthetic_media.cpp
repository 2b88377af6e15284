#include "cli/synthetic_media.hpp"

#include <fmt/format.h>
#include <jpeglib.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fusiongraph/fusiongraph.hpp>
#include <memory>
#include <vector>

namespace fg::cli {

namespace {

constexpr int kSide = 224;
constexpr int kRate = 16000;
const char* const kWords[] = {"a",    "red",   "blue",   "leather", "ankle", "boot", "shirt",
                              "long", "short", "cotton", "wool",    "coat",  "with", "collar"};
constexpr int kWordCount = sizeof(kWords) / sizeof(kWords[0]);

// SplitMix64: the same values on every platform.
struct Random {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
};

struct JpegErrors {
  jpeg_error_mgr manager;  // first: libjpeg hands back a pointer to it
  std::jmp_buf jump;
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegErrors*>(cinfo->err)->jump, 1);
}

// Smooth colour gradients with a little noise: a photograph-like amount of JPEG work.
void write_jpeg(const std::string& path, Random& random) {
  std::vector<unsigned char> rgb(kSide * kSide * 3);
  const double fx = 0.01 + 0.05 * random.uniform(), fy = 0.01 + 0.05 * random.uniform();
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 127 + 90 * std::sin(fx * x * (c + 1) + fy * y) + 30 * random.uniform();
        rgb[(y * kSide + x) * 3 + c] = static_cast<unsigned char>(std::clamp(v, 0.0, 255.0));
      }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw Error("cannot write the file").in_file(path);
  jpeg_compress_struct cinfo;
  JpegErrors errors;
  cinfo.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = &jpeg_fail;  // libjpeg's default would exit the process
  if (setjmp(errors.jump)) {
    char message[JMSG_LENGTH_MAX];
    (*cinfo.err->format_message)(reinterpret_cast<j_common_ptr>(&cinfo), message);
    jpeg_destroy_compress(&cinfo);
    throw Error(fmt::format("libjpeg: {}", message)).in_file(path);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f.get());
  cinfo.image_width = kSide;
  cinfo.image_height = kSide;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = &rgb[cinfo.next_scanline * kSide * 3];
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
}

// 1 s of a tone with noise, 16-bit PCM.
void write_wav(const std::string& path, Random& random) {
  std::vector<float> samples(kRate);
  const double hz = 100 + 900 * random.uniform();
  for (int i = 0; i < kRate; ++i)
    samples[i] = static_cast<float>(0.5 * std::sin(2 * M_PI * hz * i / kRate) +
                                    0.1 * (random.uniform() - 0.5));
  SF_INFO info{};
  info.samplerate = kRate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw Error(fmt::format("cannot write the file: {}", sf_strerror(nullptr))).in_file(path);
  const sf_count_t written = sf_writef_float(f, samples.data(), kRate);
  sf_close(f);
  if (written != kRate) throw Error("cannot write the samples").in_file(path);
}

std::string sentence(Random& random) {
  std::string s;
  const int words = 4 + static_cast<int>(random.next() % 8);
  for (int w = 0; w < words; ++w)
    s += (w ? " " : "") + std::string(kWords[random.next() % kWordCount]);
  return s;
}

constexpr const char* kGraph =
    R"(# bench-data --synthetic: the reference graph's input shapes, read from raw files.
name: bench_data_synthetic
inputs:
  image: {shape: [224, 224, 3], preprocessing: {type: image, height: 224, width: 224, channels: 3, rescale: 0.00392156862745098}}
  audio: {shape: [16000, 1], preprocessing: {type: audio, sample_rate: 16000, mono: true, max_length: 16000}}
  text: {shape: [100], dtype: int32, preprocessing: {type: text, vocabulary: vocab.txt, output_sequence_length: 100}}
nodes:
  - {name: image_gap, op: global_average_pooling2d, input: image}
  - {name: audio_gap, op: global_average_pooling1d, input: audio}
  - {name: text_embedding, op: embedding, input: text, input_dim: 100, output_dim: 8}
  - {name: text_gap, op: global_average_pooling1d, input: text_embedding}
  - {name: fusion, op: concatenate, inputs: [image_gap, audio_gap, text_gap]}
  - {name: classifier, op: dense, input: fusion, units: 2, activation: softmax}
outputs:
  classifier: {preprocessing: {type: category, classes: [low, high]}}
)";

}  // namespace

SyntheticMedia write_synthetic_media(const std::string& dir, int64_t samples, uint64_t seed) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(fmt::format("cannot create the folder: {}", ec.message())).in_file(dir);
  Random random{seed};
  std::string table = "image,audio,text,label\n";
  for (int64_t i = 0; i < samples; ++i) {
    const std::string image = fmt::format("image_{:05}.jpg", i),
                      audio = fmt::format("audio_{:05}.wav", i);
    write_jpeg((fs::path(dir) / image).string(), random);
    write_wav((fs::path(dir) / audio).string(), random);
    table += fmt::format("{},{},{},{}\n", image, audio, sentence(random), i % 2 ? "high" : "low");
  }
  std::string vocabulary;
  for (const char* w : kWords) vocabulary += std::string(w) + "\n";
  SyntheticMedia out;
  out.graph = (fs::path(dir) / "graph.yaml").string();
  out.table = (fs::path(dir) / "data.csv").string();
  out.samples = samples;
  write_file_atomic((fs::path(dir) / "vocab.txt").string(), {vocabulary});
  write_file_atomic(out.graph, {kGraph});
  write_file_atomic(out.table, {table});
  return out;
}

}  // namespace fg::cli
