// Every input the fuzzers ever crashed on, replayed: each file in tests/fuzz/regressions/<target>/
// goes through the same entry point as the fuzz target fuzz_<target> (tests/fuzz/
// fuzz_entry_points.hpp) and must end in success or an fg::Error, never another exception or a
// crash. Reproducers that still crash wait in tests/fuzz/pending/<target>/ (not replayed here)
// until their fix lands. See docs/fuzzing.md.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/weights.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/data/test_audio_files.hpp"
#include "tests/data/test_image_files.hpp"
#include "tests/fuzz/fuzz_entry_points.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;

namespace {

// Reproducers are kept small: a fuzzer's minimised input, not a data file.
constexpr uintmax_t kMaxReproducerBytes = 64 * 1024;

enum class Outcome { ok, error, other };

// What one input does: returns, throws fg::Error, or throws something else (the message kept).
Outcome feed(const fg::fuzz::Target& target, const std::string& bytes, std::string& message) {
  try {
    target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return Outcome::ok;
  } catch (const fg::Error& e) {
    message = e.what();
    return Outcome::error;
  } catch (const std::exception& e) {
    message = e.what();
    return Outcome::other;
  }
}

const fg::fuzz::Target& target_named(const std::string& name) {
  for (const auto& t : fg::fuzz::targets())
    if (t.name == name) return t;
  FAIL("no fuzz target named " << name);
  throw;  // unreachable
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("fuzz regressions: every reproducer ends in success or an fg::Error") {
  const fs::path root = fg::test::source_path("tests/fuzz/regressions");
  size_t replayed = 0;
  for (const fs::path& folder : {root, fs::path(fg::test::source_path("tests/fuzz/pending"))}) {
    if (!fs::is_directory(folder)) continue;
    for (const auto& entry : fs::directory_iterator(folder)) {
      CHECK_MESSAGE(entry.is_directory(), entry.path() << ": expected only <target>/ folders");
      target_named(entry.path().filename().string());  // a folder per existing target
    }
  }
  for (const auto& target : fg::fuzz::targets()) {
    for (const fs::path& file : files_in(root / target.name)) {
      CAPTURE(file.string());
      CHECK(fs::file_size(file) <= kMaxReproducerBytes);
      std::string message;
      const Outcome outcome = feed(target, fg::test::read_bytes(file.string()), message);
      CHECK_MESSAGE(outcome != Outcome::other, "escaped as a non-fg::Error exception: " << message);
      ++replayed;
    }
  }
  MESSAGE(replayed << " reproducer(s) replayed");
}

// The entry points do reach the readers: a well-formed input passes, a broken one is refused.
TEST_CASE("fuzz entry points: a valid graph compiles and binds, a broken one throws fg::Error") {
  const auto& graph = target_named("graph");
  std::string message;
  const std::string valid = R"(inputs:
  x: {shape: [null, 7]}
  ids: {shape: [null], dtype: int32}
nodes:
  - {name: e, op: embedding, input: ids, input_dim: 13, output_dim: 7}
  - {name: pool, op: global_average_pooling1d, input: e}
  - {name: d, op: dense, input: x, units: 5}
  - {name: g, op: global_max_pooling1d, input: d}
  - {name: cat, op: concatenate, inputs: [pool, g]}
outputs: [cat]
)";
  CHECK(feed(graph, valid, message) == Outcome::ok);
  // binds every null dim to 3: a pooling window of 4 does not fit (known only once bound)
  const std::string too_small = R"(inputs:
  x: {shape: [null, 2]}
nodes:
  - {name: p, op: max_pooling1d, input: x, pool_size: 4}
outputs: [p]
)";
  CHECK(feed(graph, too_small, message) == Outcome::error);
  CHECK(message.find("'p'") != std::string::npos);
  CHECK(feed(graph, "nodes: [", message) == Outcome::error);
}

TEST_CASE("fuzz entry points: safetensors for the validation graph pass; a missing one throws") {
  const auto& safetensors = target_named("safetensors");
  const auto graph = fg::compile_graph(
      fg::load_graph_string(fg::fuzz::kValidateGraph, "fuzz_weights.yaml"), fg::builtin_ops());
  fg::test::TempDir dir;
  fg::WeightStore store = fg::WeightStore::initialize(graph, 7);
  store.save_safetensors(dir.file("all.safetensors"));
  std::string message;
  CHECK(feed(safetensors, fg::test::read_bytes(dir.file("all.safetensors")), message) ==
        Outcome::ok);

  fg::WeightStore partial;
  for (const auto& [key, tensor] : store.tensors())
    if (key != "c.kernel") partial.set(key, tensor);
  partial.save_safetensors(dir.file("partial.safetensors"));
  CHECK(feed(safetensors, fg::test::read_bytes(dir.file("partial.safetensors")), message) ==
        Outcome::error);
  CHECK(message.find("missing tensor 'c.kernel'") != std::string::npos);
}

TEST_CASE("fuzz entry points: .npy float32 and int32 files are read, a bad magic throws") {
  const auto& npy = target_named("npy");
  // numpy 1.0 header for '<i4', shape (13,), padded to 128 bytes in total, then the data
  std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (13,), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + fg::test::le_bytes(header.size(), 2) +
                     header + std::string(13 * 4, '\x01');
  std::string message;
  CHECK(feed(npy, file, message) == Outcome::ok);
  file[1] = 'X';
  CHECK(feed(npy, file, message) == Outcome::error);
  CHECK(message.find("not an .npy file") != std::string::npos);
}

TEST_CASE("fuzz entry points: PNG and JPEG images decode, convert and resize; a bad CRC throws") {
  const auto& image = target_named("image");
  fg::test::PngSpec spec;
  spec.height = 7;
  spec.width = 13;
  std::vector<int> samples(7 * 13 * 3);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<int>(i * 37 % 256);
  std::string png = fg::test::encode_png(spec, samples);
  std::string message;
  CHECK(feed(image, png, message) == Outcome::ok);
  png[20] ^= 1;  // a byte of IHDR's width: its CRC no longer matches
  CHECK(feed(image, png, message) == Outcome::error);
  CHECK(message.find("PNG") != std::string::npos);

  fg::test::JpegSpec jpeg;
  jpeg.height = 5;
  jpeg.width = 9;
  jpeg.components = 1;
  jpeg.in_space = JCS_GRAYSCALE;
  const std::vector<unsigned char> grey(5 * 9, 100);
  CHECK(feed(image, fg::test::encode_jpeg(jpeg, grey), message) == Outcome::ok);
  CHECK(feed(image, "GIF89a", message) == Outcome::error);
  CHECK(message.find("not a PNG or JPEG file") != std::string::npos);
}

TEST_CASE("fuzz entry points: a stereo WAV at 22050 Hz is resampled and turned into mels") {
  const auto& audio = target_named("audio");
  fg::test::TempDir dir;
  const std::string path = dir.file("stereo.wav");
  std::vector<float> values = fg::test::sine(2 * 1013, 440.0, 22050.0, 0.5);
  fg::test::write_float_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 2, values);
  std::string message;
  std::string wav = fg::test::read_bytes(path);
  CHECK(feed(audio, wav, message) == Outcome::ok);
  CHECK(feed(audio, wav.substr(0, wav.size() / 2), message) == Outcome::error);
  CHECK(message.find("truncated") != std::string::npos);
  CHECK(feed(audio, std::string(), message) == Outcome::error);
}

TEST_CASE("fuzz entry points: a table is read as CSV, TSV or JSON lines; empty bytes throw") {
  const auto& table = target_named("table");
  std::string message;
  CHECK(feed(table, "path,label\r\n\"a, b.png\",\"x \"\"y\"\"\"\r\nc.png,\r\n", message) ==
        Outcome::ok);
  CHECK(feed(table, "{\"a\": 1, \"b\": null}\n{\"c\": \"caf\u00e9\"}\n", message) == Outcome::ok);
  CHECK(feed(table, "", message) == Outcome::error);
  CHECK(message.find("fuzz.csv") != std::string::npos);  // the first format's error
}
