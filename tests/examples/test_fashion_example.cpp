// The Fashion-MNIST three-modality example (examples/fashion_fusion): a 360-sample subset built
// by make_dataset.py from the Debian package dataset-fashion-mnist and espeak-ng, then one epoch
// of graphs/fashion_concat.yaml trained on it and evaluated, as a user runs them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/data/preprocessors.hpp"
#include "engine/data/table.hpp"
#include "engine/npy.hpp"
#include "framework/yaml_loader.hpp"
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

// The C++ pipeline (the graph's `preprocessing:`, vocabulary adapted on train.csv) on the rows
// of `split`.csv against make_dataset.py's npy folder of the same rows, an independent
// implementation (numpy: pixels / 255, Keras's MelSpectrogram, TextVectorization's adapt).
void check_pipeline_matches_npy(const std::string& graph, const std::string& data,
                                const std::string& split) {
  fg::Preprocessors pre = fg::Preprocessors::for_graph(*fg::load_graph_file(graph));
  pre.adapt(fg::Table::read(data + "/train.csv"));
  const fg::Table table = fg::Table::read(data + "/" + split + ".csv");
  const std::string npy = data + "/npy/" + split + "/";
  const fg::Tensor image = fg::read_npy(npy + "image.npy", fg::DType::f32);
  const fg::Tensor audio = fg::read_npy(npy + "audio.npy", fg::DType::f32);
  const fg::Tensor text = fg::read_npy(npy + "text.npy", fg::DType::i32);
  const fg::Tensor label = fg::read_npy(npy + "label.npy", fg::DType::i32);
  REQUIRE(image.shape()[0] == table.rows());
  double image_diff = 0, audio_diff = 0;
  int64_t text_diff = 0, label_diff = 0;
  for (int64_t r = 0; r < table.rows(); ++r) {
    fg::SampleValue v;
    auto cell = [&](const char* column) { return table.cell(r, table.column_index(column)); };
    pre.preprocess_input("image", cell("image"), data, "image", v);
    REQUIRE(v.f32.size() == 28 * 28);
    for (size_t i = 0; i < v.f32.size(); ++i)
      image_diff =
          std::max(image_diff, double(std::fabs(v.f32[i] - image.data<float>()[r * 784 + i])));
    pre.preprocess_input("audio", cell("audio"), data, "audio", v);
    const int64_t per = audio.shape()[1] * audio.shape()[2];
    REQUIRE(int64_t(v.f32.size()) == per);  // 101 frames x 40 mel bins
    for (int64_t i = 0; i < per; ++i)
      audio_diff =
          std::max(audio_diff, double(std::fabs(v.f32[i] - audio.data<float>()[r * per + i])));
    pre.preprocess_input("text", cell("text"), data, "text", v);
    REQUIRE(v.i32.size() == 16);
    for (size_t i = 0; i < 16; ++i) text_diff += v.i32[i] != text.data<int32_t>()[r * 16 + i];
    label_diff += pre.class_id("label", cell("label"), "label") != label.data<int32_t>()[r];
  }
  CHECK(image_diff <= 1e-6);
  CHECK(audio_diff <= 1e-2);  // dB; float32 FFTW against numpy's float64 FFT
  CHECK(text_diff == 0);
  CHECK(label_diff == 0);
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

  const std::string graph = source_path("graphs/fashion_concat.yaml");
  check_pipeline_matches_npy(graph, data, "test");

  // as a user runs them: from the raw files through the tables, then one sample by hand
  CliResult trained =
      run_cli("train " + graph + " --data " + data + "/train.csv --validation-data " + data +
              "/validation.csv --epochs 1 --save " + dir.path + "/w.safetensors");
  REQUIRE_MESSAGE(trained.code == 0, trained.out);
  CHECK(trained.out.find("Epoch 1/1 - 4/4 - ") != std::string::npos);  // 240 samples, batch 64
  CHECK(trained.out.find("val_accuracy: ") != std::string::npos);
  CliResult evaluated = run_cli("evaluate " + graph + " --weights " + dir.path +
                                "/w.safetensors --data " + data + "/test.csv --json");
  REQUIRE_MESSAGE(evaluated.code == 0, evaluated.out);
  CHECK(evaluated.out.find("\"samples\": 60") != std::string::npos);
  CHECK(evaluated.out.find("\"accuracy\": ") != std::string::npos);
  const std::string first = train.substr(train.find('\n') + 1);  // image,audio,"text",label
  const std::string image = first.substr(0, first.find(','));
  const std::string rest = first.substr(image.size() + 1);
  const std::string audio = rest.substr(0, rest.find(','));
  CliResult predicted =
      run_cli("run " + graph + " --weights " + dir.path + "/w.safetensors" +
              " --input image=" + data + "/" + image + " --input audio=" + data + "/" + audio +
              " --input 'text=a cotton item' --output-dir " + dir.path + "/out");
  REQUIRE_MESSAGE(predicted.code == 0, predicted.out);
  bool named = false;  // the top class printed by name
  for (const char* name : {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                           "Sneaker", "Bag", "Ankle boot"})
    named =
        named || predicted.out.find(std::string("sample 0: ") + name + " (p=") != std::string::npos;
  CHECK_MESSAGE(named, predicted.out);
}
