// verify's reference formats: a folder of .npy files and an .npz archive (stored and deflated
// entries, written here with libzip) give the same report as the fixture's HDF5 reference;
// broken archives are clear errors.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <zip.h>

#include <filesystem>
#include <fusiongraph/import.hpp>

#include "engine/npy.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

const char* kModel = "tests/data/keras/activations/ReLU_2_model.h5";
const char* kReference = "tests/data/keras/activations/ReLU_2_inputs_and_outputs.h5";

std::unique_ptr<Model> imported(const ImportedModel& m) {
  auto def = load_graph_string(format_imported_yaml(m), "imported.yaml");
  ModelOptions options;
  options.optimize = false;
  return std::make_unique<Model>(std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops())),
                                 m.weights, options);
}

// The HDF5 reference as <name>.npy files (inputs under the graph's input name).
void write_npy_folder(const ReferenceSet& ref, const std::string& dir) {
  write_npy(dir + "/dense_input.npy", ref.inputs.begin()->second);
  for (const auto& [name, t] : ref.activations) write_npy(dir + "/" + name + ".npy", t);
}

void write_npz(const std::string& folder, const std::string& path, bool deflate) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  REQUIRE(z != nullptr);
  for (const auto& e : std::filesystem::directory_iterator(folder)) {
    zip_source_t* s = zip_source_file(z, e.path().c_str(), 0, -1);
    REQUIRE(s != nullptr);
    const zip_int64_t i = zip_file_add(z, e.path().filename().c_str(), s, ZIP_FL_OVERWRITE);
    REQUIRE(i >= 0);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(i),
                             deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  REQUIRE(zip_close(z) == 0);
}

}  // namespace

TEST_CASE("verify: .npy folders and .npz archives as references") {
  test::NamedTempDir dir("fg_reference", "formats");
  const ImportedModel m = import_keras_model(test::source_path(kModel));
  auto model = imported(m);
  const ReferenceSet h5 = read_reference(test::source_path(kReference));
  const std::string folder = dir.path + "/npy";
  std::filesystem::create_directories(folder);
  write_npy_folder(h5, folder);
  for (const std::string& path : {folder, dir.path + "/stored.npz", dir.path + "/deflated.npz"}) {
    CAPTURE(path);
    if (path != folder) write_npz(folder, path, path.find("deflated") != std::string::npos);
    const ReferenceSet ref = read_reference(path);
    CHECK(ref.activations.size() == 3);  // dense_input, dense, re_lu_1
    const VerifyReport r = verify_against_reference(*model, ref);
    CHECK(r.ok());
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0].node == "dense");
    CHECK(r.rows[1].node == "re_lu_1");
    CHECK(r.unused.empty());
  }
  // the same through the command line
  const std::string g = dir.path + "/g.yaml", w = dir.path + "/w.safetensors";
  CHECK(test::run_cli(
            fmt::format("import {} --graph {} --weights {}", test::source_path(kModel), g, w))
            .code == 0);
  const auto r = test::run_cli(
      fmt::format("verify {} --weights {} --reference {}/deflated.npz", g, w, dir.path));
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("re_lu_1") != std::string::npos);
}

TEST_CASE("verify: broken references are clear errors") {
  test::NamedTempDir dir("fg_reference", "broken");
  const ImportedModel m = import_keras_model(test::source_path(kModel));
  auto model = imported(m);
  // a zip that is cut short
  const std::string folder = dir.path + "/npy";
  std::filesystem::create_directories(folder);
  write_npy_folder(read_reference(test::source_path(kReference)), folder);
  write_npz(folder, dir.path + "/full.npz", true);
  const auto size = std::filesystem::file_size(dir.path + "/full.npz");
  std::filesystem::copy_file(dir.path + "/full.npz", dir.path + "/cut.npz");
  std::filesystem::resize_file(dir.path + "/cut.npz", size / 2);
  CHECK_THROWS_WITH_AS(read_reference(dir.path + "/cut.npz"), doctest::Contains("cut.npz"), Error);
  // no array for the input
  std::filesystem::remove(folder + "/dense_input.npy");
  CHECK_THROWS_WITH_AS(verify_against_reference(*model, read_reference(folder)),
                       doctest::Contains("no array for the graph input 'dense_input'"), Error);
  // an array of the wrong shape is a failing row
  write_npy(folder + "/dense_input.npy",
            read_reference(test::source_path(kReference)).inputs.begin()->second);
  write_npy(folder + "/dense.npy", Tensor(DType::f32, {2, 31}));
  const VerifyReport r = verify_against_reference(*model, read_reference(folder));
  CHECK(r.first_divergence == "dense");
  CHECK(r.rows.at(0).problem.find("(2, 31)") != std::string::npos);
}
