// fg::RawInputs (include/fusiongraph/data.hpp): raw files and texts -> the input tensors of a
// batch, checked against tensors worked out by hand from the files the tests write; class
// names; the learnt state from a weights file's metadata; errors naming input and value.
#include <doctest/doctest.h>

#include <filesystem>
#include <fusiongraph/data.hpp>

#include "engine/safetensors.hpp"
#include "tests/api/raw_test_files.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace fg {
namespace {

using test::NamedTempDir;

struct RawFixture {
  NamedTempDir dir{"fg_raw_inputs", "api"};
  std::string path(const std::string& name) const { return dir.path + "/" + name; }

  Session session(const std::string& audio_length, const std::string& text_length) const {
    test::write_vocabulary(path("vocab.txt"));
    CompileOptions options;
    options.init_seed = 0;
    return load_string(test::raw_graph_yaml(audio_length, text_length), options,
                       path("graph.yaml"));
  }
  void write_media() const {
    test::write_grey_png(path("a.png"), 3, 5, test::known_pixels(3, 5, 0));
    test::write_grey_png(path("b.png"), 3, 5, test::known_pixels(3, 5, 100));
    std::vector<float> seven, thirteen;
    for (int i = 0; i < 7; ++i) seven.push_back(0.125f * (i + 1));
    for (int i = 0; i < 13; ++i) thirteen.push_back(-0.0625f * i);
    test::write_float_wav(path("a.wav"), 8000, seven);
    test::write_float_wav(path("b.wav"), 8000, thirteen);
  }
};

TEST_CASE(
    "RawInputs::batch: images rescaled, audio and ragged text padded with zeros to the longest") {
  RawFixture f;
  f.write_media();
  const Session session = f.session("null", "null");
  const RawInputs raw(session, "");
  CHECK(raw.raw_input_names() == std::vector<std::string>{"image", "audio", "text"});
  RawBatchOptions options;
  options.base_dir = f.dir.path;
  const auto tensors = raw.batch({{"image", {"a.png", f.path("b.png")}},
                                  {"audio", {"a.wav", "b.wav"}},
                                  {"text", {"A leather ankle boot", "Shirt!"}}},
                                 options);
  const Tensor& image = tensors.at("image");
  REQUIRE(image.shape() == Dims{2, 3, 5, 1});
  for (int s = 0; s < 2; ++s)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x)
        CHECK(image.data<float>()[s * 15 + y * 5 + x] ==
              doctest::Approx((10 * y + 3 * x + 7 + 100 * s) / 255.0).epsilon(1e-6));
  const Tensor& audio = tensors.at("audio");
  REQUIRE(audio.shape() == Dims{2, 13, 1});
  for (int i = 0; i < 13; ++i) {
    CHECK(audio.data<float>()[i] == (i < 7 ? 0.125f * (i + 1) : 0.f));
    CHECK(audio.data<float>()[13 + i] == -0.0625f * i);
  }
  const Tensor& text = tensors.at("text");
  REQUIRE(text.shape() == Dims{2, 4});
  REQUIRE(text.dtype() == DType::i32);
  const std::vector<int32_t> ids(text.data<int32_t>(), text.data<int32_t>() + 8);
  CHECK(ids == std::vector<int32_t>{1, 2, 3, 4, 5, 0, 0, 0});  // "a" is out of vocabulary
  // the batch runs
  CHECK(session.run(tensors).at("classifier").shape() == Dims{2, 3});
}

TEST_CASE("RawInputs::batch does not depend on the thread count") {
  RawFixture f;
  f.write_media();
  const RawInputs raw(f.session("null", "4"), "");
  std::map<std::string, std::vector<std::string>> values;
  for (int i = 0; i < 7; ++i) {
    values["image"].push_back(i % 2 ? "a.png" : "b.png");
    values["audio"].push_back(i % 3 ? "a.wav" : "b.wav");
    values["text"].push_back(i % 2 ? "boot" : "leather shirt");
  }
  RawBatchOptions one, three;
  one.base_dir = three.base_dir = f.dir.path;
  three.threads = 3;
  const auto a = raw.batch(values, one), b = raw.batch(values, three);
  for (const auto& [name, t] : a) CHECK(to_floats(t) == to_floats(b.at(name)));
}

TEST_CASE("RawInputs::top_classes: names in order of probability") {
  RawFixture f;
  const RawInputs raw(f.session("null", "null"), "");
  CHECK(raw.class_names("classifier") == std::vector<std::string>{"boot", "shirt, long", "sandal"});
  const Tensor p = tensor_f32({2, 3}, {0.2f, 0.5f, 0.3f, 0.6f, 0.1f, 0.3f});
  const auto top = raw.top_classes("classifier", p, 0, 2);
  REQUIRE(top.size() == 2);
  CHECK(top[0].name == "shirt, long");
  CHECK(top[0].index == 1);
  CHECK(top[0].probability == 0.5f);
  CHECK(top[1].name == "sandal");
  CHECK(raw.top_classes("classifier", p, 1, 5).front().name == "boot");
  CHECK_THROWS_WITH_AS(raw.top_classes("classifier", tensor_f32({1, 4}, {0, 0, 0, 1}), 0, 1),
                       doctest::Contains("4 values per sample but its preprocessing has 3"), Error);
}

TEST_CASE("RawInputs errors name the input and the value") {
  RawFixture f;
  f.write_media();
  const RawInputs raw(f.session("null", "null"), "");
  RawBatchOptions options;
  options.base_dir = f.dir.path;
  auto message = [&](const std::map<std::string, std::vector<std::string>>& values) {
    try {
      raw.batch(values, options);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string missing = message({{"image", {"nope.png"}}});
  CHECK(missing.find("input 'image'") != std::string::npos);
  CHECK(missing.find("nope.png") != std::string::npos);
  const std::string text_for_image = message({{"image", {"a leather ankle boot"}}});
  CHECK(text_for_image.find("input 'image' value 'a leather ankle boot'") != std::string::npos);
  const std::string unknown = message({{"imag", {"a.png"}}});
  CHECK(unknown.find("no input 'imag'") != std::string::npos);
  CHECK(unknown.find("'image'") != std::string::npos);  // did you mean
  CHECK(message({{"image", {"a.png", "b.png"}}, {"text", {"boot"}}}).find("1 values") !=
        std::string::npos);
}

TEST_CASE("RawInputs takes the learnt vocabulary from the weights file's metadata") {
  RawFixture f;
  // No vocabulary file: the graph learns it in training.
  std::string yaml = test::raw_graph_yaml("null", "null");
  yaml.replace(yaml.find("vocabulary: vocab.txt"), 21, "max_tokens: 10");
  CompileOptions options;
  options.init_seed = 0;
  const Session session = load_string(yaml, options, f.path("graph.yaml"));
  const std::string no_state = f.path("plain.safetensors");
  session.weights().save_safetensors(no_state);
  CHECK(read_preprocessing_metadata(no_state).empty());
  CHECK_THROWS_WITH_AS(RawInputs(session, no_state).batch({{"text", {"boot"}}}),
                       doctest::Contains("does not hold it"), Error);
  CHECK_THROWS_WITH_AS(RawInputs(session, "").batch({{"text", {"boot"}}}),
                       doctest::Contains("no weights file was given"), Error);

  const std::string state =
      R"({"format": "fusiongraph-preprocessing-1", "text": {"text": {"vocabulary": ["zebra", "boot"]}}, "category": {}})";
  const std::string trained = f.path("trained.safetensors");
  write_safetensors(trained, session.weights().tensors(), {{kPreprocessingMetadataKey, state}});
  CHECK(read_preprocessing_metadata(trained) == state);
  const Tensor ids = RawInputs(session, trained).batch({{"text", {"Boot zebra, cat"}}}).at("text");
  CHECK(std::vector<int32_t>(ids.data<int32_t>(), ids.data<int32_t>() + 3) ==
        std::vector<int32_t>{3, 2, 1});
}

TEST_CASE("read_preprocessing_metadata refuses truncated and oversized headers, naming the file") {
  RawFixture f;
  const std::string tiny = f.path("tiny.safetensors");
  test::write_text(tiny, "abc");
  CHECK_THROWS_WITH_AS(read_preprocessing_metadata(tiny),
                       doctest::Contains("tiny.safetensors: error: not a safetensors file"), Error);
  // a header length of 2^40: larger than kMaxSafetensorsHeader
  const std::string huge = f.path("huge.safetensors");
  test::write_text(huge, std::string("\0\0\0\0\0\x01\0\0{}", 10));
  CHECK_THROWS_WITH_AS(read_preprocessing_metadata(huge), doctest::Contains("header length"),
                       Error);
  const std::string cut = f.path("cut.safetensors");
  test::write_text(cut, std::string("\x40\0\0\0\0\0\0\0{\"a\"", 12));
  CHECK_THROWS_WITH_AS(read_preprocessing_metadata(cut), doctest::Contains("ends inside"), Error);
  CHECK_THROWS_WITH_AS(read_preprocessing_metadata(f.path("none.safetensors")),
                       doctest::Contains("none.safetensors"), Error);
}

}  // namespace
}  // namespace fg
