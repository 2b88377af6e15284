// The Fashion-MNIST three-modality example (examples/fashion_fusion): a 360-sample subset built
// by make_dataset.py from the Debian package dataset-fashion-mnist and espeak-ng, then one epoch
// of graphs/fashion_concat.yaml trained on it and evaluated, as a user runs them.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/cli/cli_test_util.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace fg::test;

namespace {

const char* kFashionMnist = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

size_t count_lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// The graph as the training data folders take it. Until the YAML loader reads `preprocessing:`
// (the raw-data pipeline), a copy without those keys; afterwards the file itself.
std::string trainable_graph(const std::string& graph, const std::string& dir) {
  if (run_cli("validate " + graph).code == 0) return graph;
  std::string text = read_all(graph), out;
  const std::string key = ", preprocessing: {";
  for (size_t i = 0;;) {
    size_t j = text.find(key, i);
    if (j == std::string::npos) {
      out += text.substr(i);
      break;
    }
    out += text.substr(i, j - i);
    size_t k = j + key.size();
    for (int depth = 1; depth > 0 && k < text.size(); ++k)
      depth += text[k] == '{' ? 1 : text[k] == '}' ? -1 : 0;
    i = k;
  }
  const std::string output = "outputs:\n  label: {preprocessing:";
  size_t outputs = out.find(output);
  REQUIRE(outputs != std::string::npos);
  out.replace(outputs, out.find('\n', outputs + output.size()) - outputs, "outputs: [label]");
  return write_text(dir + "/" + fs::path(graph).filename().string(), out);
}

}  // namespace

TEST_CASE("fashion example: a 360-sample subset trains one epoch of the concat fusion") {
  if (!fs::exists(kFashionMnist) || run_command("command -v espeak-ng sox >/dev/null").code != 0) {
    MESSAGE("skipped: needs the Debian packages dataset-fashion-mnist (" << kFashionMnist
                                                                         << "), espeak-ng and sox");
    return;
  }
  NamedTempDir dir("fg_fashion", "subset");
  const std::string data = dir.path + "/data";
  CliResult made = run_command(
      "/usr/bin/python3 " + source_path("examples/fashion_fusion/make_dataset.py") + " --out " +
      data + " --train 240 --validation 60 --test 60 --pool 100 --npy 2>&1");
  REQUIRE_MESSAGE(made.code == 0, made.out);

  // the tables: a header named as the graph's inputs and output column, one row per sample
  const std::string train = read_all(data + "/train.csv");
  CHECK(train.rfind("image,audio,text,label\n", 0) == 0);
  CHECK(count_lines(train) == 241);
  CHECK(count_lines(read_all(data + "/validation.csv")) == 61);
  CHECK(count_lines(read_all(data + "/test.csv")) == 61);
  // the files the first row refers to: a grey 28x28 PNG and a 16 kHz mono 16-bit WAV of 1 s
  const std::string row = train.substr(train.find('\n') + 1);
  const std::string png = read_all(data + "/" + row.substr(0, row.find(',')));
  REQUIRE(png.size() > 33);
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(png.compare(12, 4, "IHDR") == 0);
  CHECK(static_cast<unsigned char>(png[19]) == 28);  // width (big-endian, low byte)
  CHECK(static_cast<unsigned char>(png[24]) == 8);   // bit depth
  CHECK(static_cast<unsigned char>(png[25]) == 0);   // colour type: grey
  const size_t audio_at = row.find(',') + 1;
  const std::string wav =
      read_all(data + "/" + row.substr(audio_at, row.find(',', audio_at) - audio_at));
  CHECK(wav.size() == 44 + 2 * 16000);
  CHECK(wav.compare(0, 4, "RIFF") == 0);
  CHECK(wav.compare(8, 4, "WAVE") == 0);

  const std::string graph = trainable_graph(source_path("graphs/fashion_concat.yaml"), dir.path);
  CliResult trained =
      run_cli("train " + graph + " --data " + data + "/npy/train --validation-data " + data +
              "/npy/validation --epochs 1 --save " + dir.path + "/w.safetensors");
  REQUIRE_MESSAGE(trained.code == 0, trained.out);
  CHECK(trained.out.find("Epoch 1/1 - 4/4 - ") != std::string::npos);  // 240 samples, batch 64
  CHECK(trained.out.find("val_accuracy: ") != std::string::npos);
  CliResult evaluated = run_cli("evaluate " + graph + " --weights " + dir.path +
                                "/w.safetensors --data " + data + "/npy/test --json");
  REQUIRE_MESSAGE(evaluated.code == 0, evaluated.out);
  CHECK(evaluated.out.find("\"samples\": 60") != std::string::npos);
  CHECK(evaluated.out.find("\"accuracy\": ") != std::string::npos);
}
