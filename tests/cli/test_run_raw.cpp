// graph-runner run on raw values (--input NAME=PATH|TEXT, --data TABLE, --output CSV): class
// names printed, the predictions CSV compared with the plain API run on tensors preprocessed by
// hand from the files the test writes, and bad values named with exit 1.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fusiongraph/data.hpp>
#include <nlohmann/json.hpp>
#include <numeric>

#include "tests/api/raw_test_files.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace fg::test {
namespace {

// RFC 4180 lines without embedded newlines: fields split at commas outside quotes.
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '"' && quoted && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        fields.emplace_back();
      } else {
        fields.back() += c;
      }
    }
    rows.push_back(fields);
  }
  return rows;
}

struct RawCliFixture {
  NamedTempDir dir{"fg_run_raw", "cli"};
  std::string graph, weights;
  std::vector<float> wav_a, wav_b;  // wav_b is shorter than max_length 8

  std::string path(const std::string& name) const { return dir.path + "/" + name; }
  RawCliFixture() {
    graph = write_text(path("graph.yaml"), raw_graph_yaml("8", "4"));
    write_vocabulary(path("vocab.txt"));
    write_grey_png(path("a.png"), 3, 5, known_pixels(3, 5, 0));
    write_grey_png(path("b.png"), 3, 5, known_pixels(3, 5, 90));
    for (int i = 0; i < 8; ++i) wav_a.push_back(0.1f * (i - 3));
    for (int i = 0; i < 5; ++i) wav_b.push_back(0.2f + 0.05f * i);
    write_float_wav(path("a.wav"), 8000, wav_a);
    write_float_wav(path("b.wav"), 8000, wav_b);
    weights = path("w.safetensors");
    REQUIRE(run_cli("init " + graph + " -o " + weights + " --seed 3").code == 0);
  }

  // The independent path: the tensors worked out by hand, run through the plain API.
  std::vector<float> probabilities(int shift, std::vector<float> audio,
                                   const std::vector<int>& ids) const {
    CompileOptions options;
    options.weights_file = weights;
    const Session session = load(graph, options);
    std::vector<float> image;
    for (unsigned char v : known_pixels(3, 5, shift)) image.push_back(v / 255.0f);
    audio.resize(8, 0.f);
    const auto out = session.run({{"image", tensor_f32({1, 3, 5, 1}, image)},
                                  {"audio", tensor_f32({1, 8, 1}, audio)},
                                  {"text", tensor_i32({1, 4}, ids)}});
    return to_floats(out.at("classifier"));
  }
};

const std::vector<std::string> kClasses = {"boot", "shirt, long", "sandal"};

// A predictions row against the expected probabilities: class name of the largest, each
// probability, their sum.
void check_row(const std::vector<std::string>& row, const std::vector<float>& want) {
  REQUIRE(row.size() == 4);
  const size_t best = std::max_element(want.begin(), want.end()) - want.begin();
  CHECK(row[0] == kClasses[best]);
  double sum = 0;
  for (size_t c = 0; c < 3; ++c) {
    CHECK(std::stof(row[c + 1]) == doctest::Approx(want[c]).epsilon(1e-5));
    sum += std::stod(row[c + 1]);
  }
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("run --input with a PNG, a WAV and a text prints class names and writes the CSV") {
  RawCliFixture f;
  const auto r = run_cli("run " + f.graph + " --weights " + f.weights +
                         " --input image=" + f.path("a.png") + " --input audio=" + f.path("a.wav") +
                         " --input text=\"A leather ankle boot\" --output " + f.path("p.csv") +
                         " --output-dir " + f.path("out") + " --top 2");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("input image: (1, 3, 5, 1) float32 preprocessed from") != std::string::npos);
  CHECK(r.out.find("input text: (1, 4) int32 preprocessed from 'A leather ankle boot'") !=
        std::string::npos);
  const std::vector<float> want = f.probabilities(0, f.wav_a, {1, 2, 3, 4});
  std::vector<size_t> order = {0, 1, 2};
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return want[a] > want[b]; });
  CHECK(r.out.find(fmt::format("  sample 0: {} (p={:.4f}), {} (p={:.4f})\n", kClasses[order[0]],
                               want[order[0]], kClasses[order[1]], want[order[1]])) !=
        std::string::npos);
  const auto csv = read_csv(f.path("p.csv"));
  REQUIRE(csv.size() == 2);
  CHECK(csv[0] == std::vector<std::string>{"classifier", "classifier:boot",
                                           "classifier:shirt, long", "classifier:sandal"});
  check_row(csv[1], want);
  std::ifstream manifest(f.path("out/manifest.json"));
  const std::string m((std::istreambuf_iterator<char>(manifest)), std::istreambuf_iterator<char>());
  CHECK(m.find("\"predicted\": [\n") != std::string::npos);
  CHECK(m.find(kClasses[order[0]]) != std::string::npos);
}

TEST_CASE("run --data TABLE --output writes one row per sample in table order") {
  RawCliFixture f;
  // 7 rows in batches of 3 (the last one short); rows alternate the files.
  std::string table = "id,image,audio,text\n";
  std::vector<std::vector<int>> ids;
  const std::vector<std::string> texts = {"\"Boot, leather\"", "shirt",
                                          "ankle ankle ankle ankle ankle"};
  const std::vector<std::vector<int>> text_ids = {{4, 2, 0, 0}, {5, 0, 0, 0}, {3, 3, 3, 3}};
  for (int i = 0; i < 7; ++i)
    table += fmt::format("{},{},{},{}\n", i, i % 2 ? "a.png" : "b.png", i % 3 ? "a.wav" : "b.wav",
                         texts[i % 3]);
  write_text(f.path("test.csv"), table);
  const auto r =
      run_cli("run " + f.graph + " --weights " + f.weights + " --data " + f.path("test.csv") +
              " --output " + f.path("pred.csv") + " --batch 3 --workers 2");
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("wrote 7 predictions to") != std::string::npos);
  const auto csv = read_csv(f.path("pred.csv"));
  REQUIRE(csv.size() == 8);
  CHECK(csv[0][0] == "classifier");
  for (int i = 0; i < 7; ++i) {
    INFO("row " << i);
    check_row(csv[i + 1],
              f.probabilities(i % 2 ? 0 : 90, i % 3 ? f.wav_a : f.wav_b, text_ids[i % 3]));
  }
}

TEST_CASE("run with bad raw values names the input and the value") {
  RawCliFixture f;
  const std::string base =
      "run " + f.graph + " --weights " + f.weights + " --output-dir " + f.path("out");
  auto missing = run_cli(base + " --input image=" + f.path("nope.png"));
  CHECK(missing.code == 1);
  CHECK(missing.out.find("input 'image'") != std::string::npos);
  CHECK(missing.out.find("nope.png") != std::string::npos);
  auto text = run_cli(base + " --input image=\"a leather ankle boot\"");
  CHECK(text.code == 1);
  CHECK(text.out.find("input 'image' value 'a leather ankle boot'") != std::string::npos);
  // an unknown name is bad usage (exit 2), as for .npy inputs
  auto unknown = run_cli(base + " --input imag=" + f.path("a.png"));
  CHECK(unknown.code == 2);
  CHECK(unknown.out.find("--input imag=") != std::string::npos);
  CHECK(unknown.out.find("'image'") != std::string::npos);
  write_text(f.path("t.csv"), "image,audio\na.png,a.wav\n");
  auto column = run_cli("run " + f.graph + " --weights " + f.weights + " --data " +
                        f.path("t.csv") + " --output " + f.path("p.csv"));
  CHECK(column.code == 1);
  CHECK(column.out.find("no column 'text'") != std::string::npos);
  CHECK(!std::filesystem::exists(f.path("p.csv")));
  write_text(f.path("t.csv"), "image,audio,text\na.png,a.wav,boot\nmissing.png,a.wav,boot\n");
  auto row = run_cli("run " + f.graph + " --weights " + f.weights + " --data " + f.path("t.csv") +
                     " --output " + f.path("p.csv"));
  CHECK(row.code == 1);
  CHECK(row.out.find("row 2") != std::string::npos);
  CHECK(row.out.find("missing.png") != std::string::npos);
  CHECK(!std::filesystem::exists(f.path("p.csv")));
  CHECK(run_cli("run " + f.graph + " --data " + f.path("t.csv")).code == 2);  // no --output
}

TEST_CASE("bench-data --synthetic writes JPEGs and WAVs, decodes them and reports samples/s") {
  NamedTempDir dir("fg_bench_data", "cli");
  const auto r = run_cli("bench-data --synthetic 3 --synthetic-dir " + dir.path +
                             " --samples 3 --batch 2 --workers 1,2 --repeats 1 --json",
                         false);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const auto json = nlohmann::json::parse(r.out);
  CHECK(json["schema"] == "fusiongraph-bench-data/1");
  CHECK(json["samples"] == 3);
  CHECK(json["inputs"] == nlohmann::json::array({"image", "audio", "text"}));
  REQUIRE(json["results"].size() == 2);
  CHECK(json["results"][1]["workers"] == 2);
  CHECK(json["results"][0]["samples_per_second"].get<double>() > 0);
  // the files are what the reference graph takes
  CompileOptions options;
  options.init_seed = 0;
  const Session session = load(dir.path + "/graph.yaml", options);
  const RawInputs raw(session, "");
  const auto tensors = raw.batch(Table::read(dir.path + "/data.csv"), 0, 3);
  CHECK(tensors.at("image").shape() == Dims{3, 224, 224, 3});
  CHECK(tensors.at("audio").shape() == Dims{3, 16000, 1});
  CHECK(std::filesystem::file_size(dir.path + "/image_00002.jpg") > 1000);
  CHECK(run_cli("bench-data --workers 1").code == 2);  // neither GRAPH + --data nor --synthetic
}

}  // namespace
}  // namespace fg::test
