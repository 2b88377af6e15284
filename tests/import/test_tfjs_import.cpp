// TF.js layers models made at test time by the format's rules (tfjs-converter's
// keras_h5_conversion.py and write_weights.py): model.json with modelTopology and a
// weightsManifest, the weights' little-endian bytes concatenated per group and cut into shard
// files anywhere (also inside a weight). Most come from real Keras fixtures (their model_config
// and model_weights/<layer>/weight_names, ':0' stripped, as the converter does), so the import
// verifies against Keras's own activations; quantized weights are checked against the format's
// dequantization formula computed here.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <fusiongraph/import.hpp>
#include <nlohmann/json.hpp>

#include "engine/import/hdf5_file.hpp"
#include "engine/import/tfjs_model.hpp"
#include "framework/compiler.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/test_util.hpp"

using namespace fg;
using json = nlohmann::json;

namespace {

using test::import_error;

const std::string kData = "tests/data/keras/";

struct Weight {
  std::string name;
  Tensor value;
  std::string store = "float32";  // float32, int32, float16, uint8, uint16
};

void append_bytes(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}

// uint8 / uint16 affine quantization as write_weights.py's quantize_weights: the range nudged so
// that 0 is exact; value = q * scale + min.
json quantize(const Tensor& t, int bits, std::string& bytes) {
  const float* v = t.data<float>();
  double lo = *std::min_element(v, v + t.size()), hi = *std::max_element(v, v + t.size());
  const double qmax = bits == 8 ? 255 : 65535;
  double scale = (hi - lo) / qmax;
  if (lo == hi) scale = 1;  // one value: all zeros, scale 1
  if (lo <= 0 && 0 <= hi) {
    lo = -std::round(-lo / scale) * scale;
    hi = qmax * scale + lo;
  }
  for (size_t i = 0; i < t.size(); ++i) {
    const double q = std::round((std::clamp<double>(v[i], lo, hi) - lo) / scale);
    if (bits == 8) {
      const uint8_t b = static_cast<uint8_t>(q);
      append_bytes(bytes, &b, 1);
    } else {
      const uint16_t b = static_cast<uint16_t>(q);
      append_bytes(bytes, &b, 2);
    }
  }
  return {{"dtype", bits == 8 ? "uint8" : "uint16"},
          {"scale", scale},
          {"min", lo},
          {"original_dtype", "float32"}};
}

json encode(const Weight& w, std::string& bytes) {
  json entry = {{"name", w.name}, {"shape", w.value.shape()}, {"dtype", "float32"}};
  const float* v = w.value.data<float>();
  if (w.store == "float32") {
    append_bytes(bytes, v, w.value.size() * 4);
  } else if (w.store == "int32") {
    entry["dtype"] = "int32";
    for (size_t i = 0; i < w.value.size(); ++i) {
      const int32_t x = static_cast<int32_t>(v[i]);
      append_bytes(bytes, &x, 4);
    }
  } else if (w.store == "float16") {
    for (size_t i = 0; i < w.value.size(); ++i) {
      const _Float16 h = static_cast<_Float16>(v[i]);  // the compiler's IEEE rounding
      append_bytes(bytes, &h, 2);
    }
    entry["quantization"] = {{"dtype", "float16"}, {"original_dtype", "float32"}};
  } else {
    entry["quantization"] = quantize(w.value, w.store == "uint8" ? 8 : 16, bytes);
  }
  return entry;
}

// Writes dir/model.json and the groups' shards (each group's bytes cut into `shards` files of
// ceil(size / shards) bytes, as _shard_group_bytes_to_disk does with that shard size).
std::string write_tfjs(const std::string& dir, const json& topology,
                       const std::vector<std::vector<Weight>>& groups, int shards = 2) {
  json manifest = json::array();
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string bytes;
    json weights = json::array();
    for (const Weight& w : groups[g]) weights.push_back(encode(w, bytes));
    const size_t shard = (bytes.size() + shards - 1) / shards;
    json paths = json::array();
    for (int s = 0; s < shards; ++s) {
      const std::string name = fmt::format("group{}-shard{}of{}.bin", g + 1, s + 1, shards);
      std::ofstream(dir + "/" + name, std::ios::binary)
          << bytes.substr(std::min(bytes.size(), s * shard), shard);
      paths.push_back(name);
    }
    manifest.push_back({{"paths", paths}, {"weights", weights}});
  }
  const json model = {{"format", "layers-model"},
                      {"generatedBy", "keras v2.3.1"},
                      {"convertedBy", "TensorFlow.js Converter v3.18.0"},
                      {"modelTopology", topology},
                      {"weightsManifest", manifest}};
  return test::write_text(dir + "/model.json", model.dump());
}

// What tensorflowjs_converter makes of a Keras .h5 (h5_merged_saved_model_to_tfjs_format): the
// topology {keras_version, backend, model_config, training_config} and, from model_weights/ in
// the file's group order, each layer's weights in weight_names order, named without ':0'.
json converter_topology(const Hdf5File& h5) {
  json t = {{"keras_version", h5.string_attribute("/", "keras_version").value_or("")},
            {"backend", h5.string_attribute("/", "backend").value_or("")},
            {"model_config", json::parse(*h5.string_attribute("/", "model_config"))}};
  if (auto training = h5.string_attribute("/", "training_config"))
    t["training_config"] = json::parse(*training);
  return t;
}

std::vector<Weight> converter_weights(const Hdf5File& h5) {
  std::vector<Weight> out;
  for (const std::string& layer : h5.children("model_weights"))
    for (const std::string& w :
         h5.string_list_attribute("model_weights/" + layer, "weight_names")) {
      const std::string name =
          w.size() > 2 && w.substr(w.size() - 2) == ":0" ? w.substr(0, w.size() - 2) : w;
      out.push_back({name, h5.float_dataset("model_weights/" + layer + "/" + w)});
    }
  return out;
}

std::string fixture(const std::string& name) {
  return test::source_path(kData + name + "_model.h5");
}
std::string reference(const std::string& name) {
  return test::source_path(kData + name + "_inputs_and_outputs.h5");
}

VerifyReport verify(const ImportedModel& m, const std::string& ref, VerifyTolerance tol = {}) {
  ModelOptions options;
  options.optimize = false;
  Model model(std::make_shared<CompiledGraph>(compile_graph(m.graph, builtin_ops())), m.weights,
              options);
  return verify_against_reference(model, read_reference(ref), tol);
}

void check_verified(const VerifyReport& r, size_t rows) {
  for (const VerifyRow& row : r.rows) {
    CAPTURE(row.node);
    CAPTURE(row.max_abs);
    CAPTURE(row.max_rel);
    CHECK(row.ok);
  }
  CHECK(r.ok());
  CHECK(r.rows.size() == rows);
  CHECK(r.unused.empty());
}

// The ELU_0 fixture (Sequential: Dense(32) on 16 features, ELU) converted, in two shards.
std::string write_elu(const std::string& dir, const std::string& store = "float32") {
  const Hdf5File h5(fixture("activations/ELU_0"));
  std::vector<Weight> w = converter_weights(h5);
  for (Weight& x : w) x.store = store;
  return write_tfjs(dir, converter_topology(h5), {w});
}

json& manifest_weights(json& model) {
  return model["weightsManifest"][0]["weights"];
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

}  // namespace

TEST_CASE("TF.js: a converted Sequential fixture in two shards verifies against Keras") {
  test::NamedTempDir dir("fg_tfjs", "sequential");
  const std::string path = write_elu(dir.path);
  // the converter's names for this Keras 2.3.1 file, and 2176 bytes split 1088 + 1088
  const json model = read_json(path);
  CHECK(model["weightsManifest"][0]["weights"][0]["name"] == "dense/kernel");
  CHECK(model["weightsManifest"][0]["weights"][1]["name"] == "dense/bias");
  CHECK(std::filesystem::file_size(dir.path + "/group1-shard2of2.bin") == 1088);
  CHECK(tfjs::is_tfjs_model_json(path));
  const ImportedModel m = import_keras_model(path);
  CHECK(m.keras_version == "2.3.1");
  CHECK(m.weights.find("dense.kernel")->shape() == Dims{16, 32});
  check_verified(verify(m, reference("activations/ELU_0")), 2);
  const std::string yaml = format_imported_yaml(m);
  CHECK(yaml.find("TF.js layers model") != std::string::npos);
  // the command line: import, then verify against Keras's numbers
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  auto r = test::run_cli(fmt::format("import {} --graph {} --weights {}", path, g, w));
  CAPTURE(r.out);
  CHECK(r.code == 0);
  r = test::run_cli(
      fmt::format("verify {} --weights {} --reference {}", g, w, reference("activations/ELU_0")));
  CHECK(r.code == 0);
  CHECK(r.out.find("verified: 2 nodes") != std::string::npos);
}

// The ThresholdReLU_0 fixture's layers as a Keras 2 functional model (InputLayer 'x', the same
// names and weights), in TF.js's own model.save() form: the topology is the config itself.
TEST_CASE("TF.js: a functional model, topology saved by TF.js itself, shards cut mid-weight") {
  test::NamedTempDir dir("fg_tfjs", "functional");
  const Hdf5File h5(fixture("activations/ThresholdReLU_0"));
  const json seq = json::parse(*h5.string_attribute("/", "model_config"));
  json layers = json::array(
      {{{"class_name", "InputLayer"},
        {"name", "x"},
        {"config",
         {{"name", "x"},
          {"batch_input_shape", seq["config"]["layers"][0]["config"]["batch_input_shape"]},
          {"dtype", "float32"}}},
        {"inbound_nodes", json::array()}}});
  std::string previous = "x";
  for (json l : seq["config"]["layers"]) {
    l["config"].erase("batch_input_shape");
    l["name"] = l["config"]["name"];
    l["inbound_nodes"] =
        json::array({json::array({json::array({previous, 0, 0, json::object()})})});
    previous = l["name"];
    layers.push_back(l);
  }
  const json topology = {{"class_name", "Model"},
                         {"config",
                          {{"name", "f"},
                           {"layers", layers},
                           {"input_layers", json::array({json::array({"x", 0, 0})})},
                           {"output_layers", json::array({json::array({previous, 0, 0})})}}},
                         {"keras_version", "tfjs-layers 4.10.0"},
                         {"backend", "tensor_flow.js"}};
  // 2176 bytes in 3 shards of 726: the cuts fall inside the kernel and inside the bias
  const std::string path = write_tfjs(dir.path, topology, {converter_weights(h5)}, 3);
  const ImportedModel m = import_keras_model(path);
  CHECK(m.keras_version == "tfjs-layers 4.10.0");
  CHECK(m.graph->inputs.at(0).name == "x");
  check_verified(verify(m, reference("activations/ThresholdReLU_0")), 2);
}

// simple_lstm_tf_keras_1 (LSTM(50) with hard_sigmoid gates, Dense(1)) as TF.js writes a Keras 2
// LSTM: one group per layer (the converter's split_by_layer), the newer converter's
// 'lstm_1/lstm_cell/kernel' names or the older 'lstm_1/kernel'. The arrays are the fixture's,
// in the Keras 2 layout (the gates i, f, c, o concatenated; the legacy import does that).
TEST_CASE("TF.js: an LSTM with hard_sigmoid gates verifies as Keras 2 computes it") {
  test::NamedTempDir dir("fg_tfjs", "lstm");
  const ImportedModel legacy = import_keras_model(fixture("simple_lstm/simple_lstm_tf_keras_1"));
  const json config = json::parse(R"({"class_name": "Sequential", "config": {"name": "sequential_1",
    "layers": [{"class_name": "LSTM", "config": {"name": "lstm_1", "trainable": true,
      "batch_input_shape": [null, 1, 1], "dtype": "float32", "return_sequences": false,
      "return_state": false, "go_backwards": false, "stateful": false, "unroll": false,
      "units": 50, "activation": "tanh", "recurrent_activation": "hard_sigmoid", "use_bias": true,
      "unit_forget_bias": true, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 1}},
     {"class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "dtype": "float32",
      "units": 1, "activation": "linear", "use_bias": true}}]}})");
  for (const char* cell : {"lstm_cell/", ""}) {
    for (const char* version : {"2.13.1", "3.3.3"}) {
      CAPTURE(std::string(cell));
      CAPTURE(std::string(version));
      const auto w = [&](const std::string& name, const char* key) {
        return Weight{name, *legacy.weights.find(key)};
      };
      const std::string lstm = std::string("lstm_1/") + cell;
      const std::string path = write_tfjs(
          dir.path,
          {{"keras_version", version}, {"backend", "tensorflow"}, {"model_config", config}},
          {{w(lstm + "kernel", "lstm_1.kernel"),
            w(lstm + "recurrent_kernel", "lstm_1.recurrent_kernel"),
            w(lstm + "bias", "lstm_1.bias")},
           {w("dense_1/kernel", "dense_1.kernel"), w("dense_1/bias", "dense_1.bias")}});
      const ImportedModel m = import_keras_model(path);
      // TF.js computes hard_sigmoid as Keras 2 (0.2x + 0.5), even for a Keras 3 topology
      const std::string yaml = format_imported_yaml(m);
      CAPTURE(yaml);
      CHECK(yaml.find("recurrent_activation: hard_sigmoid}") != std::string::npos);
      CHECK(yaml.find("hard_sigmoid_keras3") == std::string::npos);
      check_verified(verify(m, reference("simple_lstm/simple_lstm_tf_keras_1")), 2);
    }
  }
}

// Keras 3's converter names a layer's weights by index ('dense/1' before 'dense/0' here): the
// index is the order.
TEST_CASE("TF.js: Keras 3 numbered weight names bind in index order") {
  test::NamedTempDir dir("fg_tfjs", "numbered");
  const Hdf5File h5(fixture("activations/ReLU_2"));
  std::vector<Weight> w = converter_weights(h5);
  REQUIRE(w.size() == 2);
  const std::string path = write_tfjs(dir.path, converter_topology(h5),
                                      {{{"dense/1", w[1].value}, {"dense/0", w[0].value}}});
  check_verified(verify(import_keras_model(path), reference("activations/ReLU_2")), 2);
}

TEST_CASE("TF.js: float16 weights decode exactly and verify within float16's precision") {
  // binary16 values by the IEEE 754 definition
  CHECK(tfjs::float16_to_float(0x3C00) == 1.0f);
  CHECK(tfjs::float16_to_float(0xC000) == -2.0f);
  CHECK(tfjs::float16_to_float(0x3555) == 0.333251953125f);  // 2^-2 * (1 + 341 / 1024)
  CHECK(tfjs::float16_to_float(0x7BFF) == 65504.0f);
  CHECK(tfjs::float16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(tfjs::float16_to_float(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(tfjs::float16_to_float(0x8000) == 0.0f);
  CHECK(std::signbit(tfjs::float16_to_float(0x8000)));
  CHECK(std::isinf(tfjs::float16_to_float(0xFC00)));
  CHECK(std::isnan(tfjs::float16_to_float(0x7E00)));

  test::NamedTempDir dir("fg_tfjs", "float16");
  // a channels_first Conv1D fixture (kernel 3 x 3 x 4 and bias), float16 in two shards
  const std::string name = "conv1d/conv1d_k3_s1_d1_cf_same";
  const Hdf5File h5(fixture(name));
  std::vector<Weight> w = converter_weights(h5);
  for (Weight& x : w) x.store = "float16";
  const std::string path = write_tfjs(dir.path, converter_topology(h5), {w});
  const ImportedModel m = import_keras_model(path);
  const Tensor& kernel = *m.weights.find("conv0_channels_last.kernel");
  REQUIRE(kernel.size() == w[0].value.size());
  for (size_t i = 0; i < kernel.size(); ++i)
    CHECK(kernel.data<float>()[i] ==
          static_cast<float>(static_cast<_Float16>(w[0].value.data<float>()[i])));
  // every weight is off by up to 2^-11 of itself, so an output by up to 2^-11 of the sum of its
  // terms' magnitudes: here at most 5.9e-5 absolute, 1.4e-4 relative, beyond float32's
  // 1e-4 / 1e-5, hence rtol 1e-3 / atol 5e-4 (an error in the decoding is far larger)
  check_verified(verify(m, reference(name), {1e-3, 5e-4}), 1);
  CHECK(!verify(m, reference(name)).ok());  // float32's tolerance: float16 is lossy
}

TEST_CASE("TF.js: uint8 / uint16 affine quantization and int32 weights") {
  test::NamedTempDir dir("fg_tfjs", "quantized");
  const Hdf5File h5(fixture("activations/ReLU_2"));
  std::vector<Weight> w = converter_weights(h5);
  w[0].store = "uint8";
  w[1].store = "uint16";
  const std::string path = write_tfjs(dir.path, converter_topology(h5), {w});
  const json manifest = read_json(path)["weightsManifest"][0]["weights"];
  const ImportedModel m = import_keras_model(path);
  // the stored bytes read back by hand: value = q * scale + min
  std::ifstream s1(dir.path + "/group1-shard1of2.bin", std::ios::binary),
      s2(dir.path + "/group1-shard2of2.bin", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(s1)), {});
  bytes += std::string((std::istreambuf_iterator<char>(s2)), {});
  REQUIRE(bytes.size() == 16 * 32 + 32 * 2);
  const double scale0 = manifest[0]["quantization"]["scale"],
               min0 = manifest[0]["quantization"]["min"];
  const double scale1 = manifest[1]["quantization"]["scale"],
               min1 = manifest[1]["quantization"]["min"];
  const Tensor& kernel = *m.weights.find("dense.kernel");
  const Tensor& bias = *m.weights.find("dense.bias");
  for (size_t i = 0; i < 16 * 32; ++i)
    CHECK(kernel.data<float>()[i] ==
          static_cast<float>(static_cast<uint8_t>(bytes[i]) * scale0 + min0));
  for (size_t i = 0; i < 32; ++i) {
    uint16_t q;
    std::memcpy(&q, bytes.data() + 512 + 2 * i, 2);
    CHECK(bias.data<float>()[i] == static_cast<float>(q * scale1 + min1));
  }
  // uint8 keeps the kernel within a step of Keras's (half for the rounding, half for the nudge)
  for (size_t i = 0; i < 16 * 32; ++i)
    CHECK(std::abs(kernel.data<float>()[i] - w[0].value.data<float>()[i]) <= scale0 + 1e-7);

  // int32 weights become float32: a Dense(4) on 2 features, kernel [[1, 2, 3, 4], [5, -6, 7, 8]];
  // an int32 bias from uint8, q * 0.5 - 1 rounded as JavaScript's Math.round (half up): q = 0, 3,
  // 7, 1 -> -1, 0.5 -> 1, 2.5 -> 3, -0.5 -> 0 (std::round would give -1)
  const json dense = json::parse(R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
    {"class_name": "Dense", "config": {"name": "d", "batch_input_shape": [null, 2], "units": 4,
     "activation": "linear", "use_bias": true}}]}, "keras_version": "2.3.1"})");
  const std::string ints = dir.path + "/ints";
  std::filesystem::create_directories(ints);
  write_tfjs(ints, dense,
             {{{"d/kernel", test::make_tensor({2, 4}, {1, 2, 3, 4, 5, -6, 7, 8}), "int32"}}}, 1);
  json j = read_json(ints + "/model.json");
  j["weightsManifest"][0]["weights"].push_back(
      {{"name", "d/bias"},
       {"shape", {4}},
       {"dtype", "int32"},
       {"quantization", {{"dtype", "uint8"}, {"scale", 0.5}, {"min", -1.0}}}});
  j["weightsManifest"][0]["paths"].push_back("bias.bin");
  const unsigned char q[4] = {0, 3, 7, 1};
  std::ofstream(ints + "/bias.bin", std::ios::binary).write(reinterpret_cast<const char*>(q), 4);
  test::write_text(ints + "/model.json", j.dump());
  const ImportedModel d = import_keras_model(ints + "/model.json");
  CHECK(test::to_doubles(*d.weights.find("d.kernel")) ==
        std::vector<double>{1, 2, 3, 4, 5, -6, 7, 8});
  CHECK(test::to_doubles(*d.weights.find("d.bias")) == std::vector<double>{-1, 1, 3, 0});
}

TEST_CASE("TF.js: a missing shard, shards that do not add up, nothing written") {
  test::NamedTempDir dir("fg_tfjs", "shards");
  const std::string path = write_elu(dir.path);
  const std::string shard2 = dir.path + "/group1-shard2of2.bin";
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  {
    std::filesystem::rename(shard2, shard2 + ".away");
    const std::string e = import_error(path);
    CAPTURE(e);
    CHECK(e.find(path) != std::string::npos);
    CHECK(e.find("the weight shard 'group1-shard2of2.bin' (weightsManifest group 1) is missing") !=
          std::string::npos);
    const auto r = test::run_cli(fmt::format("import {} --graph {} --weights {}", path, g, w));
    CHECK(r.code == 1);
    CHECK(r.out.find("group1-shard2of2.bin") != std::string::npos);
    CHECK(!std::filesystem::exists(g));
    CHECK(!std::filesystem::exists(w));
    std::filesystem::rename(shard2 + ".away", shard2);
  }
  // 3 bytes short: 1088 + 1085 = 2173 of the 2048 + 128 = 2176 bytes the weights need
  std::filesystem::resize_file(shard2, 1085);
  std::string e = import_error(path);
  CAPTURE(e);
  CHECK(e.find("its shards hold 2173 bytes (group1-shard1of2.bin 1088 bytes, "
               "group1-shard2of2.bin 1085 bytes), its 2 weights need 2176 bytes ("
               "'dense/kernel' (16, 32) float32 = 2048 bytes, 'dense/bias' (32,) float32 = 128 "
               "bytes)") != std::string::npos);
  CHECK(e.find("truncated") != std::string::npos);
  // 5 bytes too many
  std::filesystem::resize_file(shard2, 1093);
  e = import_error(path);
  CHECK(e.find("its shards hold 2181 bytes") != std::string::npos);
  const auto r = test::run_cli(fmt::format("import {} --graph {} --weights {}", path, g, w));
  CHECK(r.code == 1);
  CHECK(!std::filesystem::exists(g));
  CHECK(!std::filesystem::exists(w));
}

TEST_CASE("TF.js: a missing weight, a wrong shape, an unknown dtype, a weight of no layer") {
  test::NamedTempDir dir("fg_tfjs", "weights");
  const std::string path = write_elu(dir.path);
  const json good = read_json(path);
  auto edited = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    test::write_text(path, j.dump());
    return import_error(path);
  };
  // dense/bias gone from the manifest and its 128 bytes from the second shard
  std::filesystem::resize_file(dir.path + "/group1-shard2of2.bin", 1088 - 128);
  std::string e = edited([](json& j) { manifest_weights(j).erase(1); });
  CAPTURE(e);
  CHECK(e.find(path + ": error: layer 'dense' (Dense): the file holds 1 weight arrays for this "
                      "layer, expected 2") != std::string::npos);
  CHECK(e.find("weightsManifest holds for layer 'dense': 'dense/kernel' (16, 32) float32") !=
        std::string::npos);
  write_elu(dir.path);
  // the kernel declared (32, 16): the same bytes, the wrong shape for Dense(32) on 16 features
  e = edited([](json& j) { manifest_weights(j)[0]["shape"] = {32, 16}; });
  CHECK(e.find("layer 'dense' (Dense): the weightsManifest's 'dense/kernel' has the shape (32, "
               "16); the dense op expects (16, 32) for its 'kernel' (node 'dense')") !=
        std::string::npos);
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  const auto r = test::run_cli(fmt::format("import {} --graph {} --weights {}", path, g, w));
  CHECK(r.code == 1);
  CHECK(!std::filesystem::exists(g));
  CHECK(!std::filesystem::exists(w));
  // dtypes TF.js layers weights do not have, or quantizations it does not write
  e = edited([](json& j) { manifest_weights(j)[1]["dtype"] = "complex64"; });
  CHECK(e.find("the weight 'dense/bias' has the dtype '\"complex64\"': supported are float32 "
               "and int32") != std::string::npos);
  e = edited([](json& j) { manifest_weights(j)[0]["quantization"] = {{"dtype", "int4"}}; });
  CHECK(e.find("the weight 'dense/kernel' has the quantization dtype '\"int4\"'") !=
        std::string::npos);
  e = edited([](json& j) { manifest_weights(j)[0]["quantization"] = {{"dtype", "uint8"}}; });
  CHECK(e.find("lacks a numeric scale and min") != std::string::npos);
  // a weight named after no layer
  e = edited([](json& j) { manifest_weights(j)[1]["name"] = "dense_9/bias"; });
  CHECK(e.find("layer 'dense' (Dense): the file holds 1 weight arrays") != std::string::npos);
  // a graph model, not a layers model
  e = edited([](json& j) { j["format"] = "graph-model"; });
  CHECK(e.find("a TF.js graph model") != std::string::npos);
}

// causal_conv1d_k3_s1_d1_cl's weights are named 'conv0_4/kernel:0' for its layer 'conv0' (Keras
// numbered the variables in the session that made it): converted faithfully, no layer takes them,
// as TF.js's own loadWeights finds too.
TEST_CASE("TF.js: weights named after no layer of the model are an error naming them") {
  test::NamedTempDir dir("fg_tfjs", "orphans");
  const Hdf5File h5(fixture("causal_conv1d/causal_conv1d_k3_s1_d1_cl"));
  const std::vector<Weight> w = converter_weights(h5);
  REQUIRE(w[0].name == "conv0_4/kernel");
  const std::string path = write_tfjs(dir.path, converter_topology(h5), {w});
  const std::string e = import_error(path);
  CAPTURE(e);
  // the layer finds none of its weights first
  CHECK(e.find("layer 'conv0' (Conv1D): the file holds 0 weight arrays for this layer, "
               "expected 2") != std::string::npos);
  CHECK(e.find("holds for layer 'conv0': none") != std::string::npos);
  CHECK(e.find("'conv0_4/kernel', 'conv0_4/bias' name no layer of the model") != std::string::npos);
  // weights of a real layer are not offered as another's: 'dense_1' is the second Dense
  {
    const json two = json::parse(R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "Dense", "config": {"name": "dense", "batch_input_shape": [null, 2], "units": 2}},
      {"class_name": "Dense", "config": {"name": "dense_1", "units": 1}}]}})");
    const std::string sub = dir.path + "/two";
    std::filesystem::create_directories(sub);
    write_tfjs(sub, two,
               {{{"dense_1/kernel", test::make_tensor({2, 1}, {1, 2})},
                 {"dense_1/bias", test::make_tensor({1}, {0})}}});
    const std::string e2 = import_error(sub + "/model.json");
    CAPTURE(e2);
    CHECK(e2.find("layer 'dense' (Dense): the file holds 0 weight arrays") != std::string::npos);
    CHECK(e2.find("holds for layer 'dense': none") != std::string::npos);
    CHECK(e2.find("name no layer") == std::string::npos);
  }
  // renamed to their layer, they bind and verify
  std::vector<Weight> renamed = w;
  for (Weight& x : renamed) x.name.replace(0, 7, "conv0");
  const std::string fixed = write_tfjs(dir.path, converter_topology(h5), {renamed});
  check_verified(
      verify(import_keras_model(fixed), reference("causal_conv1d/causal_conv1d_k3_s1_d1_cl")), 1);
  // an extra weight of no layer, beside the right ones
  renamed.push_back({"conv9/kernel", test::make_tensor({2}, {1, 2})});
  write_tfjs(dir.path, converter_topology(h5), {renamed});
  CHECK(import_error(path).find("weightsManifest: 'conv9/kernel' names no layer of the model: a "
                                "weight is named '<layer name>/<variable>' (the model's layers: "
                                "'conv0')") != std::string::npos);
}

TEST_CASE("TF.js: detection, truncated and incomplete model.json files") {
  test::NamedTempDir dir("fg_tfjs", "detect");
  const std::string path = write_elu(dir.path);
  CHECK(!tfjs::is_tfjs_model_json(fixture("activations/ELU_0")));
  // a Keras model.to_json() config is not TF.js (the weights-only .h5 case)
  const std::string keras_json = test::write_text(
      dir.path + "/config.json", R"({"class_name": "Sequential", "config": {"layers": []}})");
  CHECK(!tfjs::is_tfjs_model_json(keras_json));
  // truncated: still TF.js, and an error saying the JSON is broken
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  const std::string cut = test::write_text(dir.path + "/cut.json", text.substr(0, text.size() / 2));
  CHECK(tfjs::is_tfjs_model_json(cut));
  CHECK(import_error(cut).find("model.json is not valid JSON (truncated?)") != std::string::npos);
  // no weightsManifest; no topology
  json j = read_json(path);
  j.erase("weightsManifest");
  test::write_text(path, j.dump());
  CHECK(import_error(path).find("model.json has no weightsManifest") != std::string::npos);
  j = {{"format", "layers-model"}, {"weightsManifest", json::array()}};
  test::write_text(path, j.dump());
  CHECK(import_error(path).find("modelTopology is missing") != std::string::npos);
}
