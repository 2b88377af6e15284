// Broken Keras files, each made at test time by copying a fixture and editing it with the HDF5 C
// API: every one is a clear fg::Error (naming the layer and its class where there is one), and
// `graph-runner import` exits 1 without writing anything.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <fusiongraph/import.hpp>

#include "framework/compiler.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/import_checks.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

using test::import_error;

const char* kRelu = "tests/data/keras/activations/ReLU_0_model.h5";

std::string copy_fixture(const test::NamedTempDir& dir, const std::string& name) {
  const std::string to = dir.path + "/" + name;
  std::filesystem::copy_file(test::source_path(kRelu), to);
  std::filesystem::permissions(to, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  return to;
}

// Opens a copy for writing, runs `edit` on it, closes it.
void edit_h5(const std::string& path, const std::function<void(hid_t)>& edit) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  edit(f);
  H5Fclose(f);
}

std::string read_config(hid_t f) {
  hid_t a = H5Aopen(f, "model_config", H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  std::string s;
  if (H5Tis_variable_str(t) > 0) {
    char* p = nullptr;
    H5Aread(a, t, &p);
    s = p;
    H5free_memory(p);
  } else {
    s.assign(H5Tget_size(t), '\0');
    H5Aread(a, t, s.data());
  }
  H5Tclose(t);
  H5Aclose(a);
  return s;
}

void write_config(hid_t f, const std::string& config) {
  H5Adelete(f, "model_config");
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, config.size());
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "model_config", t, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, config.data());
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

}  // namespace

TEST_CASE("Keras import: a missing weight names the layer and the weight") {
  test::NamedTempDir dir("fg_keras", "missing");
  const std::string p = copy_fixture(dir, "m.h5");
  edit_h5(p, [](hid_t f) {
    CHECK(H5Ldelete(f, "model_weights/dense/dense/bias:0", H5P_DEFAULT) >= 0);
  });
  const std::string e = import_error(p);
  CHECK(e.find("layer 'dense' (Dense)") != std::string::npos);
  CHECK(e.find("'dense/bias:0'") != std::string::npos);
  CHECK(e.find("missing") != std::string::npos);
}

TEST_CASE("Keras import: a weight of the wrong shape shows both shapes") {
  test::NamedTempDir dir("fg_keras", "shape");
  const std::string p = copy_fixture(dir, "m.h5");
  edit_h5(p, [](hid_t f) {
    H5Ldelete(f, "model_weights/dense/dense/kernel:0", H5P_DEFAULT);
    const hsize_t dims[2] = {16, 31};
    hid_t s = H5Screate_simple(2, dims, nullptr);
    hid_t d = H5Dcreate2(f, "model_weights/dense/dense/kernel:0", H5T_IEEE_F32LE, s, H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT);
    std::vector<float> zeros(16 * 31, 0.f);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
    H5Dclose(d);
    H5Sclose(s);
  });
  const std::string e = import_error(p);
  CAPTURE(e);
  CHECK(e.find("layer 'dense' (Dense)") != std::string::npos);
  CHECK(e.find("(16, 31)") != std::string::npos);
  CHECK(e.find("(16, 32)") != std::string::npos);
}

TEST_CASE("Keras import: unknown and unsupported layer classes") {
  test::NamedTempDir dir("fg_keras", "unknown");
  const std::string p = copy_fixture(dir, "m.h5");
  edit_h5(p, [](hid_t f) {
    std::string c = read_config(f);
    c.replace(c.find("\"ReLU\""), 6, "\"MyFancyLayer\"");
    write_config(f, c);
  });
  std::string e = import_error(p);
  CAPTURE(e);
  CHECK(e.find("layer 're_lu_1' (MyFancyLayer): no converter for this layer class") !=
        std::string::npos);
  CHECK(e.find("m.h5") != std::string::npos);
  const std::string q = copy_fixture(dir, "lambda.h5");
  edit_h5(q, [](hid_t f) {
    std::string c = read_config(f);
    c.replace(c.find("\"ReLU\""), 6, "\"Lambda\"");
    write_config(f, c);
  });
  CHECK(import_error(q).find("(Lambda): a Lambda layer holds Python code") != std::string::npos);
  const std::string r = copy_fixture(dir, "stateful.h5");
  edit_h5(r, [](hid_t f) {
    write_config(f,
                 "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"LSTM\", \"config\": {\"name\": \"rnn\", \"batch_input_shape\": [null, 5, 2], "
                 "\"units\": 3, \"stateful\": true}}]}}");
  });
  e = import_error(r);
  CHECK(e.find("layer 'rnn' (LSTM): stateful: true is not supported") != std::string::npos);
}

TEST_CASE("Keras import: truncated files and files that are not HDF5") {
  test::NamedTempDir dir("fg_keras", "truncated");
  const std::string full = test::source_path(kRelu);
  const auto size = std::filesystem::file_size(full);
  for (size_t keep : {size_t{100}, size_t(size / 2), size_t(size - 200)}) {
    CAPTURE(keep);
    const std::string p = dir.path + "/t" + std::to_string(keep) + ".h5";
    std::ifstream in(full, std::ios::binary);
    std::string bytes(keep, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(keep));
    std::ofstream(p, std::ios::binary) << bytes;
    const std::string e = import_error(p);
    CAPTURE(e);
    CHECK(!e.empty());
    CHECK(e.find(p) != std::string::npos);
  }
  const std::string text = test::write_text(dir.path + "/model.h5", "name: not a model\n");
  CHECK(import_error(text).find("not an HDF5 file") != std::string::npos);
}

TEST_CASE("graph-runner import and verify: exit codes, nothing written on error") {
  test::NamedTempDir dir("fg_keras", "cli");
  const std::string model =
      test::source_path("tests/data/keras/causal_conv1d/causal_conv1d_k3_s1_d2_cl_model.h5");
  const std::string ref = test::source_path(
      "tests/data/keras/causal_conv1d/causal_conv1d_k3_s1_d2_cl_inputs_and_outputs.h5");
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  auto r = test::run_cli(fmt::format("import {} --graph {} --weights {}", model, g, w));
  CHECK(r.code == 0);
  r = test::run_cli(fmt::format("verify {} --weights {} --reference {}", g, w, ref));
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("conv0") != std::string::npos);
  CHECK(r.out.find("verified: 1 nodes") != std::string::npos);
  // an impossible tolerance fails at the node
  r = test::run_cli(
      fmt::format("verify {} --weights {} --reference {} --rtol 0 --atol 1e-12", g, w, ref));
  CHECK(r.code == 1);
  CHECK(r.out.find("FIRST DIVERGENCE") != std::string::npos);
  // an unimportable file: exit 1, no file written
  const std::string bad = test::write_text(dir.path + "/bad.h5", "not hdf5");
  const std::string g2 = dir.path + "/g2.yaml", w2 = dir.path + "/w2.safetensors";
  r = test::run_cli(fmt::format("import {} --graph {} --weights {}", bad, g2, w2));
  CHECK(r.code == 1);
  CHECK(r.out.find("not an HDF5 file") != std::string::npos);
  CHECK(!std::filesystem::exists(g2));
  CHECK(!std::filesystem::exists(w2));
}

// The ReLU_0 fixture's Sequential config rewritten as a functional one (the same layers, names
// and weights): the import must give the same graph, so Keras's activations still verify.
TEST_CASE("Keras import: functional configs, Keras 2 nested lists and Keras 3 dicts") {
  test::NamedTempDir dir("fg_keras", "functional");
  const std::string input =
      R"({"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [null, 16], "dtype": "float32"}, "inbound_nodes": []})";
  const std::string keras2 =
      R"({"class_name": "Model", "config": {"name": "f", "layers": [)" + input +
      R"(, {"class_name": "Dense", "name": "dense", "config": {"name": "dense", "units": 32, "activation": "linear", "use_bias": true}, "inbound_nodes": [[["x", 0, 0, {}]]]},
      {"class_name": "ReLU", "name": "re_lu_1", "config": {"name": "re_lu_1", "max_value": null, "negative_slope": 0.0, "threshold": 0.0}, "inbound_nodes": [[["dense", 0, 0, {}]]]}],
      "input_layers": [["x", 0, 0]], "output_layers": [["re_lu_1", 0, 0]]}})";
  const std::string history =
      R"({"class_name": "__keras_tensor__", "config": {"shape": [null, 16], "dtype": "float32", "keras_history": ["LAYER", 0, 0]}})";
  auto from = [&](const std::string& layer) {
    std::string h = history;
    return h.replace(h.find("LAYER"), 5, layer);
  };
  const std::string keras3 =
      R"({"class_name": "Functional", "config": {"name": "f", "layers": [)" + input +
      R"(, {"class_name": "Dense", "name": "dense", "config": {"name": "dense", "units": 32, "activation": "linear", "use_bias": true}, "inbound_nodes": [{"args": [)" +
      from("x") + R"(], "kwargs": {}}]},
      {"class_name": "ReLU", "name": "re_lu_1", "config": {"name": "re_lu_1", "max_value": null, "negative_slope": 0.0, "threshold": 0.0}, "inbound_nodes": [{"args": [)" +
      from("dense") + R"(], "kwargs": {}}]}],
      "input_layers": [["x", 0, 0]], "output_layers": [["re_lu_1", 0, 0]]}})";
  const std::string reference =
      test::source_path("tests/data/keras/activations/ReLU_0_inputs_and_outputs.h5");
  for (const std::string& config : {keras2, keras3}) {
    const std::string p = copy_fixture(dir, config == keras2 ? "k2.h5" : "k3.h5");
    edit_h5(p, [&](hid_t f) { write_config(f, config); });
    const ImportedModel m = import_keras_model(p);
    const std::string yaml = format_imported_yaml(m);
    CAPTURE(yaml);
    CHECK(yaml.find("x: {shape: [16]}") != std::string::npos);
    CHECK(yaml.find("{name: dense, op: dense, input: x, units: 32}") != std::string::npos);
    CHECK(yaml.find("outputs: [re_lu_1]") != std::string::npos);
    ModelOptions options;
    options.optimize = false;
    Model model(std::make_shared<CompiledGraph>(compile_graph(m.graph, builtin_ops())), m.weights,
                options);
    const VerifyReport r = verify_against_reference(model, read_reference(reference));
    CHECK(r.ok());
    CHECK(r.rows.size() == 2);
  }
  // a reference to a second output (a multi-output layer) is refused, naming both layers
  // (shared layers, a second call, are imported: tests/import/test_keras_shared_layers.cpp)
  std::string multi = keras2;
  multi.replace(multi.find(R"([[["dense", 0, 0, {}]]])"), 23, R"([[["dense", 0, 1, {}]]])");
  const std::string p = copy_fixture(dir, "multi_output.h5");
  edit_h5(p, [&](hid_t f) { write_config(f, multi); });
  CHECK(import_error(p).find("layer 're_lu_1' reads output 1 of layer 'dense': multi-output "
                             "layers are not supported yet") != std::string::npos);
}
