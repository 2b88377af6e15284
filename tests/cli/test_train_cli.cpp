// graph-runner train / evaluate as a user runs them: bad data, flags and checkpoints are each a
// clear error on stderr naming the file or output, exit 1 (usage errors 2), and nothing is
// overwritten; the per-epoch lines when stdout is not a terminal; --log's CSV and curves; the
// --save file read by `run --weights` and `evaluate --weights`.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/npy.hpp"
#include "engine/weights.hpp"
#include "tests/cli/cli_test_util.hpp"

using namespace fg;
using namespace fg::test;

namespace {

const char* kGraph =
    "name: mlp\ninputs: {x: {shape: [4]}}\nnodes:\n"
    "  - {name: h, op: dense, input: x, units: 16, activation: relu}\n"
    "  - {name: out, op: dense, input: h, units: 3, activation: softmax}\n"
    "outputs: [out]\n"
    "training: {loss: categorical_crossentropy, optimizer: {name: adam, learning_rate: 0.01}, "
    "metrics: [accuracy], batch_size: 8, epochs: 2, validation_split: 0.25, seed: 1}\n";

std::string sparse_graph() {
  std::string yaml = kGraph;
  return yaml.replace(yaml.find("categorical_"), 12, "sparse_categorical_");
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Tensor one_hot_targets(int64_t n) {
  Tensor y(DType::f32, {n, 3});
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < 3; ++c) y.mutable_data<float>()[r * 3 + c] = (r % 3 == c) ? 1.f : 0.f;
  return y;
}

// A folder with graph.yaml, data/{x,out}.npy (32 samples), and a --save file, a --log CSV and
// its curves that must keep their bytes when a run fails.
struct TrainFixture {
  NamedTempDir dir;
  std::string graph, data, save, log, curves;
  const std::string kept = "previous checkpoint bytes";
  explicit TrainFixture(const std::string& name, const std::string& yaml = kGraph)
      : dir("fg_train_cli", name) {
    graph = write_text(dir.path + "/graph.yaml", yaml);
    data = dir.path + "/data";
    std::filesystem::create_directories(data);
    write_npy(data + "/x.npy", random_tensor({32, 4}, 1));
    write_npy(data + "/out.npy", one_hot_targets(32));
    save = write_text(dir.path + "/trained.safetensors", kept);
    log = write_text(dir.path + "/log.csv", kept);
    curves = write_text(dir.path + "/log.svg", kept);
  }
  // stderr only (stdout dropped): the errors must be there.
  CliResult train(const std::string& extra = "") const {
    return run_command(graph_runner_path() + " train " + graph + " --data " + data + " --save " +
                       save + " --log " + log + " " + extra + " 2>&1 >/dev/null");
  }
  void check_failed(const CliResult& r, int code, const std::vector<std::string>& parts) const {
    CAPTURE(r.out);
    CHECK(r.code == code);
    for (const auto& p : parts) CHECK_MESSAGE(has(r.out, p), "missing: " << p);
    CHECK(read_bytes(save) == kept);
    CHECK(read_bytes(curves) == kept);
    // Keras's CSVLogger truncates its file when training begins: only a NaN may clear it.
    if (!has(r.out, "NaN")) CHECK(read_bytes(log) == kept);
  }
};

TEST_CASE(
    "graph-runner train: bad data folders are errors naming the file and output, exit 1, "
    "and the --save file keeps its bytes") {
  SUBCASE("targets missing") {
    TrainFixture f("missing");
    std::filesystem::remove(f.data + "/out.npy");
    f.check_failed(f.train(), 1, {"out.npy", "'out'"});
  }
  SUBCASE("targets of the wrong shape") {
    TrainFixture f("shape");
    write_npy(f.data + "/out.npy", Tensor(DType::f32, {32, 4}));
    f.check_failed(f.train(), 1, {"out.npy", "'out'"});
  }
  SUBCASE("class ids (sparse loss) given as floats") {
    TrainFixture f("dtype", sparse_graph());
    write_npy(f.data + "/out.npy", Tensor(DType::f32, {32}));
    f.check_failed(f.train(), 1, {"out.npy", "'out'"});
  }
  SUBCASE("class ids of the wrong shape") {
    TrainFixture f("ids_shape", sparse_graph());
    write_npy(f.data + "/out.npy", Tensor(DType::i32, {32, 3}));
    f.check_failed(f.train(), 1, {"out.npy", "'out'"});
  }
  SUBCASE("class ids out of range") {
    TrainFixture f("ids", sparse_graph());
    Tensor ids(DType::i32, {32});
    for (int r = 0; r < 32; ++r) ids.mutable_data<int32_t>()[r] = r % 3;
    ids.mutable_data<int32_t>()[17] = 3;
    write_npy(f.data + "/out.npy", ids);
    f.check_failed(f.train(), 1, {"out.npy", "'out'", "3"});
  }
  SUBCASE("data files of different lengths") {
    TrainFixture f("lengths");
    write_npy(f.data + "/out.npy", one_hot_targets(31));
    f.check_failed(f.train(), 1, {"out.npy", "x.npy", "31", "32"});
  }
  SUBCASE("an input of the wrong shape") {
    TrainFixture f("input_shape");
    write_npy(f.data + "/x.npy", random_tensor({32, 5}, 1));
    f.check_failed(f.train(), 1, {"x.npy", "'x'"});
  }
  SUBCASE("a validation folder whose targets are missing") {
    TrainFixture f("validation");
    const std::string validation = f.dir.path + "/validation";
    std::filesystem::create_directories(validation);
    write_npy(validation + "/x.npy", random_tensor({8, 4}, 2));
    f.check_failed(f.train("--validation-data " + validation), 1, {"validation", "'out'"});
  }
  SUBCASE("a NaN in the data stops training at once, naming the epoch and step") {
    TrainFixture f("nan");
    Tensor x = random_tensor({32, 4}, 1);
    x.mutable_data<float>()[4 * 9 + 2] = std::nanf("");
    write_npy(f.data + "/x.npy", x);
    f.check_failed(f.train("--no-shuffle"), 1, {"epoch 1", "step 2", "NaN", "h.kernel"});
  }
  SUBCASE("a graph without a training section") {
    std::string yaml = kGraph;
    yaml = yaml.substr(0, yaml.find("training:"));
    TrainFixture f("no_training", yaml);
    f.check_failed(f.train(), 1, {"graph.yaml", "training:"});
  }
}

TEST_CASE("graph-runner train: bad flags are usage errors (exit 2), nothing overwritten") {
  TrainFixture f("flags");
  f.check_failed(f.train("--batch-size 0"), 2, {"--batch-size"});
  f.check_failed(f.train("--epochs 0"), 2, {"--epochs"});
  f.check_failed(f.train("--weights " + f.save + " --resume " + f.save), 2, {"--resume"});
  f.check_failed(f.train("--threads -1"), 2, {"--threads"});
}

TEST_CASE(
    "graph-runner train --resume: a file that is not a checkpoint, or one of another graph, "
    "is an error naming it, exit 1, nothing overwritten") {
  TrainFixture f("resume");
  SUBCASE("a plain weights file") {
    const std::string weights = f.dir.path + "/plain.safetensors";
    REQUIRE(run_cli("init " + f.graph + " -o " + weights).code == 0);
    f.check_failed(f.train("--resume " + weights), 1, {"plain.safetensors", "checkpoint"});
  }
  SUBCASE("a random file") {
    const std::string junk = write_text(f.dir.path + "/junk.safetensors", "not a safetensors file");
    f.check_failed(f.train("--resume " + junk), 1, {"junk.safetensors"});
  }
  SUBCASE("a truncated checkpoint") {
    const std::string ckpt = f.dir.path + "/whole.safetensors";
    const auto trained =
        run_cli("train " + f.graph + " --data " + f.data + " --save " + ckpt + " --epochs 1");
    REQUIRE_MESSAGE(trained.code == 0, trained.out);
    const std::string bytes = read_bytes(ckpt);
    const std::string cut =
        write_text(f.dir.path + "/cut.safetensors", bytes.substr(0, bytes.size() / 2));
    f.check_failed(f.train("--resume " + cut), 1, {"cut.safetensors"});
  }
  SUBCASE("a checkpoint of a graph whose weights do not match") {
    const std::string other_dir = f.dir.path + "/other";
    std::filesystem::create_directories(other_dir);
    std::string yaml = kGraph;
    yaml.replace(yaml.find("units: 16"), 9, "units: 12");
    const std::string other = write_text(other_dir + "/graph.yaml", yaml);
    const std::string ckpt = other_dir + "/ckpt.safetensors";
    const auto trained =
        run_cli("train " + other + " --data " + f.data + " --save " + ckpt + " --epochs 1");
    REQUIRE_MESSAGE(trained.code == 0, trained.out);
    f.check_failed(f.train("--resume " + ckpt), 1, {"ckpt.safetensors", "h.kernel"});
  }
}

TEST_CASE(
    "graph-runner train: one line per epoch with samples/s when stdout is not a terminal; "
    "--log writes the CSV (epoch from 0) and the SVG; run and evaluate read --save") {
  TrainFixture f("outputs");
  std::filesystem::remove(f.save);
  const std::string log = f.dir.path + "/log.csv";
  const auto r = run_cli("train " + f.graph + " --data " + f.data + " --save " + f.save +
                             " --log " + log + " --threads 1",
                         /*merge_stderr=*/false);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CAPTURE(r.out);
  CHECK(has(r.out, "Epoch 1/2"));
  CHECK(has(r.out, "Epoch 2/2"));
  CHECK(has(r.out, "samples/s"));
  CHECK_FALSE(has(r.out, "\r"));  // no progress bar redraws in a pipe
  std::istringstream lines(r.out);
  int rate_lines = 0;
  for (std::string line; std::getline(lines, line);) rate_lines += has(line, "samples/s");
  CHECK(rate_lines == 2);

  std::istringstream csv(read_bytes(log));
  std::string header, row0, row1, rest;
  std::getline(csv, header);
  std::getline(csv, row0);
  std::getline(csv, row1);
  std::getline(csv, rest);
  if (!header.empty() && header.back() == '\r') header.pop_back();  // csv.writer's "\r\n"
  CHECK(header == "epoch,accuracy,loss,val_accuracy,val_loss");
  CHECK(row0.rfind("0,", 0) == 0);
  CHECK(row1.rfind("1,", 0) == 0);
  CHECK(rest.empty());
  const std::string svg = read_bytes(f.dir.path + "/log.svg");
  CHECK(has(svg, "<svg"));
  CHECK(has(svg, "</svg>"));

  const auto ran = run_cli("run " + f.graph + " --weights " + f.save);
  CHECK_MESSAGE(ran.code == 0, ran.out);
  const auto eval =
      run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " + f.data + " --json",
              /*merge_stderr=*/false);
  REQUIRE_MESSAGE(eval.code == 0, eval.out);
  CHECK(has(eval.out, "\"samples\": 32"));
  CHECK(has(eval.out, "\"loss\""));
  CHECK(has(eval.out, "\"accuracy\""));
  // evaluate --precision bf16: the same samples; the loss moves by the roundings only (or not at
  // all where the CPU has no native bf16 and it runs f32).
  const auto eval_bf16 = run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " +
                                     f.data + " --json --precision bf16",
                                 /*merge_stderr=*/false);
  REQUIRE_MESSAGE(eval_bf16.code == 0, eval_bf16.out);
  CHECK(has(eval_bf16.out, "\"samples\": 32"));
  const auto loss_of = [](const std::string& json) {
    const size_t at = json.find("\"loss\": ");
    REQUIRE(at != std::string::npos);
    return std::stod(json.substr(at + 8));
  };
  CHECK(std::abs(loss_of(eval_bf16.out) - loss_of(eval.out)) <= 0.05 * loss_of(eval.out) + 1e-3);
  CHECK(run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " + f.data +
                " --precision f16")
            .code == 2);

  // --against f32: both plans' values, their difference, and per output the agreement and the
  // relative errors; the f32 side is exactly the plain evaluate's.
  const auto compared = run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " +
                                    f.data + " --json --precision bf16 --against f32",
                                /*merge_stderr=*/false);
  REQUIRE_MESSAGE(compared.code == 0, compared.out);
  CAPTURE(compared.out);
  const size_t against_at = compared.out.find("\"against\"");
  REQUIRE(against_at != std::string::npos);
  CHECK(loss_of(compared.out) == loss_of(eval_bf16.out));
  CHECK(loss_of(compared.out.substr(against_at)) == loss_of(eval.out));
  for (const char* key :
       {"\"precision\": \"bf16\"", "\"precision\": \"f32\"", "\"difference\"", "\"top1_agreement\"",
        "\"max_relative_error\"", "\"mean_relative_error\"", "\"relative_error_floor\": 0.001"})
    CHECK_MESSAGE(has(compared.out, key), "missing: " << key);
  const auto value_after = [&](const std::string& key) {
    const size_t at = compared.out.find("\"" + key + "\": ", against_at);
    REQUIRE(at != std::string::npos);
    return std::stod(compared.out.substr(at + key.size() + 4));
  };
  // 32 samples, 3 classes, softmax of a 16-unit layer: bf16's roundings (0.4 % per input) may
  // move a near tie, so at least 30 of 32 agree; every probability within 10 % (relative,
  // floor 1e-3); under ONEDNN_MAX_CPU_ISA=AVX2 both plans are f32 and agree exactly.
  CHECK(value_after("top1_agreement") >= 30.0 / 32);
  CHECK(value_after("max_relative_error") <= 0.1);
  CHECK(value_after("mean_relative_error") <= value_after("max_relative_error"));
  const auto text = run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " + f.data +
                                " --precision bf16 --against f32",
                            /*merge_stderr=*/false);
  REQUIRE_MESSAGE(text.code == 0, text.out);
  CAPTURE(text.out);
  for (const char* part : {"bf16 against f32:", "difference", "points", "top-1 agreement",
                           "max rel. error", "mean rel. error", "max(|f32|, 0.001)"})
    CHECK_MESSAGE(has(text.out, part), "missing: " << part);
  // Bad --against: the same precision, an unknown one (usage errors naming the flag and the
  // choices).
  const auto same = run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " + f.data +
                            " --precision bf16 --against bf16");
  CHECK(same.code == 2);
  CHECK(has(same.out, "--against bf16: the same precision as --precision"));
  const auto unknown = run_cli("evaluate " + f.graph + " --weights " + f.save + " --data " +
                               f.data + " --against f64");
  CHECK(unknown.code == 2);
  CHECK(has(unknown.out, "--against: unknown precision 'f64'; expected one of: f32, bf16"));

  // Resuming to 3 epochs appends epoch 2 to the CSV.
  const auto resumed = run_cli("train " + f.graph + " --data " + f.data + " --save " + f.save +
                               " --log " + log + " --resume " + f.save + " --epochs 3");
  REQUIRE_MESSAGE(resumed.code == 0, resumed.out);
  std::istringstream csv2(read_bytes(log));
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv2, line);) rows.push_back(line);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3].rfind("2,", 0) == 0);
}

}  // namespace
