// graph-runner train / evaluate on a table of generated PNGs and texts: the loss goes down, the
// learnt vocabulary and classes are saved with the weights and used by evaluate, --cache builds
// its manifest, bad rows are an error (exit 1) naming table, row, column and file, or with
// --skip-bad-rows are listed on stderr; a vocabulary larger than the embedding is an error.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/safetensors.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/data/test_image_files.hpp"

using namespace fg::test;

namespace {

std::string graph_yaml(int input_dim = 20) {
  return fmt::format(R"(name: tiny
inputs:
  image: {{shape: [6, 6, 1], preprocessing: {{type: image, height: 6, width: 6, channels: 1, rescale: 0.00392156862745098}}}}
  text: {{shape: [3], dtype: int32, preprocessing: {{type: text, output_sequence_length: 3}}}}
nodes:
  - {{name: fi, op: flatten, input: image}}
  - {{name: emb, op: embedding, input: text, input_dim: {}, output_dim: 4}}
  - {{name: pt, op: global_average_pooling1d, input: emb}}
  - {{name: merged, op: concatenate, inputs: [fi, pt]}}
  - {{name: classifier, op: dense, input: merged, units: 2, activation: softmax}}
outputs:
  classifier: {{preprocessing: {{type: category}}}}
training: {{loss: sparse_categorical_crossentropy, optimizer: {{name: adam, learning_rate: 0.05}}, metrics: [accuracy], batch_size: 8, epochs: 6, seed: 3, shuffle: true}}
)",
                     input_dim);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// 24 rows: boots are bright, shirts dark (with a pixel pattern per row); half the texts name
// the class, the rest say "an item".
struct TableFixture {
  NamedTempDir dir;
  std::string graph, table, save, log;
  explicit TableFixture(const std::string& name, int input_dim = 20)
      : dir("fg_pipeline_cli", name) {
    graph = write_text(dir.path + "/graph.yaml", graph_yaml(input_dim));
    std::string csv = "image,text,classifier\n";
    PngSpec png;
    png.height = 6;
    png.width = 6;
    png.color_type = PNG_COLOR_TYPE_GRAY;
    for (int i = 0; i < 24; ++i) {
      const bool boot = i % 2 == 0;
      std::vector<int> pixels(36);
      for (int p = 0; p < 36; ++p) pixels[p] = (boot ? 170 : 60) + (p * 7 + i * 13) % 50;
      const std::string file = fmt::format("img/{}.png", i);
      std::filesystem::create_directories(dir.path + "/img");
      std::ofstream(dir.path + "/" + file, std::ios::binary) << encode_png(png, pixels);
      const std::string text = i % 4 < 2 ? (boot ? "a boot" : "a shirt") : "an item";
      csv += fmt::format("{},{},{}\n", file, text, boot ? "boot" : "shirt");
    }
    table = write_text(dir.path + "/train.csv", csv);
    save = dir.path + "/trained.safetensors";
    log = dir.path + "/log.csv";
  }
  CliResult train(const std::string& extra = "") const {
    return run_command(graph_runner_path() + " train " + graph + " --data " + table + " --save " +
                       save + " --log " + log + " " + extra + " 2>&1");
  }
  // The loss column of --log's CSV, per epoch.
  std::vector<double> losses() const {
    std::ifstream in(log);
    std::string header, line;
    std::getline(in, header);
    std::vector<std::string> names;
    std::stringstream hs(header);
    for (std::string n; std::getline(hs, n, ',');) names.push_back(n);
    std::vector<double> out;
    while (std::getline(in, line)) {
      std::stringstream ls(line);
      std::string v;
      for (size_t c = 0; std::getline(ls, v, ','); ++c)
        if (c < names.size() && (names[c] == "loss" || names[c] == "loss\r"))
          out.push_back(std::stod(v));
    }
    return out;
  }
};

}  // namespace

TEST_CASE("graph-runner train on a table: the loss goes down, evaluate reads the saved state") {
  TableFixture f("train");
  const CliResult r = f.train("--workers 2");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  const std::vector<double> losses = f.losses();
  REQUIRE(losses.size() == 6);
  CHECK(losses.back() < 0.7 * losses.front());
  // The learnt vocabulary and classes are in the checkpoint's metadata.
  const fg::SafetensorsContents saved = fg::read_safetensors(f.save);
  const auto state = saved.metadata.find("fusiongraph.preprocessing");
  REQUIRE(state != saved.metadata.end());
  CHECK(has(state->second, "\"classes\":[\"boot\",\"shirt\"]"));
  CHECK(has(state->second, "\"boot\""));
  const CliResult e =
      run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " + f.table + " --json",
              /*merge_stderr=*/false);
  REQUIRE_MESSAGE(e.code == 0, e.out);
  CHECK(has(e.out, "\"samples\": 24"));
  // Resume reads the state back and continues.
  const CliResult resumed = f.train("--resume " + f.save + " --epochs 7");
  CHECK_MESSAGE(resumed.code == 0, resumed.out);
}

TEST_CASE("graph-runner train on a table: --cache writes shards and a manifest, reused later") {
  TableFixture f("cache");
  const std::string cache = f.dir.path + "/cache";
  const CliResult first = f.train("--cache " + cache + " --epochs 1");
  REQUIRE_MESSAGE(first.code == 0, first.out);
  CHECK(std::filesystem::exists(cache + "/manifest.json"));
  const auto stamp = std::filesystem::last_write_time(cache + "/manifest.json");
  const CliResult second = f.train("--cache " + cache + " --epochs 1");
  REQUIRE_MESSAGE(second.code == 0, second.out);
  CHECK(std::filesystem::last_write_time(cache + "/manifest.json") == stamp);
}

TEST_CASE("graph-runner train on a table: bad rows, --skip-bad-rows, vocabulary too large") {
  TableFixture f("bad");
  std::ofstream(f.table, std::ios::app) << "img/none.png,a boot,boot\n";
  const CliResult bad = f.train();
  CAPTURE(bad.out);
  CHECK(bad.code == 1);
  CHECK(has(bad.out, f.table + " row 25 (line 26), column 'image'"));
  CHECK(has(bad.out, "none.png"));
  const CliResult skipped = f.train("--skip-bad-rows --epochs 1");
  CAPTURE(skipped.out);
  CHECK(skipped.code == 0);
  CHECK(has(skipped.out, "skipped 1 bad row"));
  CHECK(has(skipped.out, "row 25 (line 26), column 'image'"));

  // Weights without the learnt state (graph-runner init) cannot read a table that needs it.
  const std::string plain = f.dir.path + "/plain.safetensors";
  REQUIRE(run_cli("init " + f.graph + " -o " + plain).code == 0);
  const CliResult stateless =
      run_cli("evaluate " + f.graph + " --weights " + plain + " --data " + f.table);
  CAPTURE(stateless.out);
  CHECK(stateless.code == 1);
  CHECK(has(stateless.out, "fusiongraph.preprocessing"));

  TableFixture small("vocab", /*input_dim=*/4);
  const CliResult vocab = small.train();
  CAPTURE(vocab.out);
  CHECK(vocab.code == 1);
  CHECK(has(vocab.out, "input 'text' has a vocabulary of 7 ids"));
  CHECK(has(vocab.out, "embedding 'emb'"));
  CHECK(has(vocab.out, "input_dim 4"));
}
