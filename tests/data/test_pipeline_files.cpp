// Tables of real files through the graph's `preprocessing:` (images, audio, text, labels):
// the bad-data cases of issue 11 (a truncated JPEG, a WAV with no samples, a missing file, a row
// with a missing column, a label not in the class list, text that is not UTF-8), each message
// naming the table, the row, the column and the file; --skip-bad-rows over all of them at once.
// Every file is written by the test (libpng, libjpeg, libsndfile).
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sndfile.h>

#include "engine/data/preprocessors.hpp"
#include "engine/data/table.hpp"
#include "engine/training/dataset.hpp"
#include "framework/compiler.hpp"
#include "framework/training_config.hpp"
#include "tests/data/test_audio_files.hpp"
#include "tests/data/test_image_files.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

using fg::test::check_error;
using fg::test::TempDir;
using fg::test::write_bytes;

const char* kGraph = R"(name: mm
inputs:
  image: {shape: [5, 7, 1], preprocessing: {type: image, height: 5, width: 7, channels: 1}}
  audio: {shape: [13, 1], preprocessing: {type: audio, sample_rate: 8000, max_length: 13}}
  text: {shape: [3], dtype: int32, preprocessing: {type: text, output_sequence_length: 3}}
nodes:
  - {name: fi, op: flatten, input: image}
  - {name: fa, op: flatten, input: audio}
  - {name: emb, op: embedding, input: text, input_dim: 50, output_dim: 2}
  - {name: pt, op: global_average_pooling1d, input: emb}
  - {name: merged, op: concatenate, inputs: [fi, fa, pt]}
  - {name: classifier, op: dense, input: merged, units: 2, activation: softmax}
outputs:
  classifier: {preprocessing: {type: category, classes: [boot, shirt]}}
training: {loss: sparse_categorical_crossentropy}
)";

struct Files {
  TempDir dir;
  std::shared_ptr<fg::CompiledGraph> graph;
  std::vector<fg::OutputTraining> outputs;
  std::shared_ptr<fg::Preprocessors> pre;
  std::string good;  // the table's header and two good rows

  Files() {
    graph = fg::test::compile_yaml(kGraph);
    outputs =
        fg::resolve_training_outputs(fg::parse_training_config(*graph->def().training), *graph);
    fg::test::PngSpec png;
    png.height = 5;
    png.width = 7;
    png.color_type = PNG_COLOR_TYPE_GRAY;
    write_bytes(dir.file("a.png"), fg::test::encode_png(png, std::vector<int>(35, 200)));
    fg::test::JpegSpec jpeg;
    jpeg.height = 10;
    jpeg.width = 14;
    const std::string full = fg::test::encode_jpeg(jpeg, std::vector<unsigned char>(420, 90));
    write_bytes(dir.file("b.jpg"), full);
    write_bytes(dir.file("cut.jpg"), full.substr(0, full.size() / 2));
    fg::test::write_float_file(dir.file("a.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1,
                               fg::test::sine(20, 440, 8000, 0.5));
    fg::test::write_float_file(dir.file("empty.wav"), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1,
                               {});
    good = "image,audio,text,classifier\na.png,a.wav,a red boot,boot\nb.jpg,a.wav,blue,shirt\n";
    write_bytes(dir.file("t.csv"), good);
    pre = std::make_shared<fg::Preprocessors>(fg::Preprocessors::for_graph(graph->def()));
    pre->adapt(fg::Table::read(dir.file("t.csv")));
  }
  fg::Dataset open(const std::string& rows, bool skip = false) {
    write_bytes(dir.file("t.csv"), good + rows);
    fg::DatasetOptions o;
    o.preprocessors = pre;
    o.skip_bad_rows = skip;
    o.workers = 2;
    return fg::open_dataset(dir.file("t.csv"), *graph, outputs, o);
  }
  std::string table() const { return dir.file("t.csv"); }
};

}  // namespace

TEST_CASE("pipeline files: images, audio and text decode into a batch") {
  Files f;
  const fg::Dataset data = f.open("");
  fg::Batch b;
  data.gather({0, 1}, b, 1);
  CHECK(b.input("image")->shape() == fg::Dims{2, 5, 7, 1});
  CHECK(b.input("image")->data<float>()[0] == doctest::Approx(200));
  CHECK(b.input("audio")->shape() == fg::Dims{2, 13, 1});
  CHECK(b.input("text")->shape() == fg::Dims{2, 3});
  CHECK(b.target("classifier")->data<int32_t>()[1] == 1);
}

TEST_CASE("pipeline files: each kind of bad data names the table, row, column and file") {
  Files f;
  const std::string t = f.table();
  fg::Batch b;
  // Decoded when read: the decoder's message with the row, column and file.
  const fg::Dataset truncated = f.open("cut.jpg,a.wav,x,boot\n");
  check_error([&] { truncated.gather({2}, b, 1); },
              {t + " row 3 (line 4), column 'image'", "cut.jpg"});
  const fg::Dataset silent = f.open("a.png,empty.wav,x,boot\n");
  check_error([&] { silent.gather({2}, b, 1); },
              {t + " row 3 (line 4), column 'audio'", "empty.wav"});
  // Checked at open.
  check_error([&] { f.open("a.png,gone.wav,x,boot\n"); },
              {t + " row 3 (line 4), column 'audio'", "gone.wav", "no such file"});
  check_error([&] { f.open("a.png,a.wav,x,hat\n"); },
              {t + " row 3 (line 4), column 'classifier'", "hat"});
  check_error([&] { f.open("a.png,a.wav,ab\xFF,boot\n"); },
              {t + " row 3 (line 4), column 'text'", "not valid UTF-8 at byte 2"});
  write_bytes(t, "image,text,classifier\na.png,x,boot\n");
  fg::DatasetOptions o;
  o.preprocessors = f.pre;
  check_error([&] { fg::open_dataset(t, *f.graph, f.outputs, o); },
              {t, "no column 'audio' for input 'audio'"});
}

TEST_CASE("pipeline files: --skip-bad-rows skips and lists every bad row") {
  Files f;
  const fg::Dataset data = f.open(
      "cut.jpg,a.wav,x,boot\n"
      "a.png,empty.wav,x,boot\n"
      "a.png,gone.wav,x,boot\n"
      "a.png,a.wav,x,hat\n"
      "a.png,a.wav,ab\xFF,boot\n"
      "b.jpg,a.wav,red,boot\n",
      /*skip=*/true);
  CHECK(data.size() == 3);
  const std::vector<std::string> skipped = data.skipped();
  REQUIRE(skipped.size() == 5);
  const char* expected[] = {"row 3 (line 4), column 'image'", "row 4 (line 5), column 'audio'",
                            "row 5 (line 6), column 'audio'", "row 6 (line 7), column 'classifier'",
                            "row 7 (line 8), column 'text'"};
  for (int i = 0; i < 5; ++i) {
    CAPTURE(skipped[i]);
    CHECK(skipped[i].find(expected[i]) != std::string::npos);
  }
  fg::Batch b;
  data.gather({2}, b, 1);  // the last good row: b.jpg, "red", boot
  CHECK(b.target("classifier")->data<int32_t>()[0] == 0);
  CHECK(b.input("image")->data<float>()[0] == doctest::Approx(90).epsilon(0.05));
}
