// `summary` of an imported model counts what Keras's model.summary() counts: the total is the
// sum of the sizes of all the model's weight arrays, trainable or not (BatchNormalization's
// moving statistics are non-trainable). The expected counts are read from the .h5 files
// directly with the HDF5 C API (every dataset under model_weights/), not from the importer.
#include <doctest/doctest.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <fusiongraph/import.hpp>

#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/import/keras_writers.hpp"
#include "tests/test_util.hpp"

using namespace fg;

namespace {

struct ArrayCounts {
  int64_t total = 0, non_trainable = 0;
};

// Every dataset under model_weights/: its element count; the moving statistics (Keras 2
// moving_mean / moving_variance, Keras 1 running_mean / running_std) are Keras's non-trainable
// weights.
ArrayCounts weight_arrays_in_file(const std::string& path) {
  ArrayCounts counts;
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
  REQUIRE(g >= 0);
  auto visit = [](hid_t group, const char* name, const H5L_info_t*, void* data) -> herr_t {
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) return -1;
    if (H5Iget_type(obj) == H5I_DATASET) {
      hid_t space = H5Dget_space(obj);
      const int64_t n = H5Sget_simple_extent_npoints(space);
      H5Sclose(space);
      auto& c = *static_cast<ArrayCounts*>(data);
      c.total += n;
      const std::string s = name;
      for (const char* stat : {"moving_mean", "moving_variance", "running_mean", "running_std"})
        if (s.find(stat) != std::string::npos) c.non_trainable += n;
    }
    H5Oclose(obj);
    return 0;
  };
  REQUIRE(H5Lvisit(g, H5_INDEX_NAME, H5_ITER_NATIVE, visit, &counts) >= 0);
  H5Gclose(g);
  H5Fclose(f);
  return counts;
}

// The counts `summary` shows for the imported model, from its written YAML read back.
Summary imported_summary(const std::string& path) {
  const ImportedModel m = import_keras_model(path);
  const auto graph = compile_graph(load_graph_string(format_imported_yaml(m)), builtin_ops());
  return summarize(graph, {});
}

void check_counts(const std::string& path) {
  CAPTURE(path);
  const ArrayCounts want = weight_arrays_in_file(path);
  const Summary got = imported_summary(path);
  CHECK(got.total_params == want.total);
  CHECK(got.trainable_params == want.total - want.non_trainable);
}

}  // namespace

TEST_CASE("summary of every imported Keras fixture counts the file's weight arrays") {
  std::vector<std::string> models;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(test::source_path("tests/data/keras"))) {
    const std::string p = e.path().string();
    if (p.size() > 9 && p.substr(p.size() - 9) == "_model.h5") models.push_back(p);
  }
  std::sort(models.begin(), models.end());
  REQUIRE(models.size() == 36);
  for (const std::string& path : models) check_counts(path);
  // the count can fail: a fixture's arrays are not zero
  CHECK(weight_arrays_in_file(models.front()).total > 0);
}

TEST_CASE("summary of an imported BatchNormalization: moving statistics are non-trainable") {
  test::NamedTempDir dir("fg_keras_counts", "bn");
  const std::string config =
      R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "Dense", "config": {"name": "dense", "trainable": true, "batch_input_shape": [null, 13], "dtype": "float32", "units": 7, "activation": "linear", "use_bias": true}},
      {"class_name": "BatchNormalization", "config": {"name": "bn", "trainable": true, "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": true}}]}})";
  const std::string path = dir.path + "/m.h5";
  test::write_legacy_model(
      path, config, {"dense", "bn"},
      {{"dense",
        {{"kernel:0", test::random_tensor({13, 7}, 1)}, {"bias:0", test::random_tensor({7}, 2)}}},
       {"bn",
        {{"gamma:0", test::random_tensor({7}, 3)},
         {"beta:0", test::random_tensor({7}, 4)},
         {"moving_mean:0", test::random_tensor({7}, 5)},
         {"moving_variance:0", test::random_tensor({7}, 6, 0.5f, 1.5f)}}}});
  const ArrayCounts want = weight_arrays_in_file(path);
  CHECK(want.total == 13 * 7 + 7 + 4 * 7);  // Keras: Total params 126
  CHECK(want.non_trainable == 2 * 7);       // Non-trainable params: 14
  check_counts(path);
}
