// Preprocessors (engine/data/preprocessors.hpp): learning vocabularies and class lists from a
// table, their JSON state and its checks, and the per-field dispatch with messages that name the
// row, column and file. The expected vocabularies follow Keras's adapt (by frequency).
#include <doctest/doctest.h>

#include "engine/data/preprocessors.hpp"
#include "engine/data/table.hpp"
#include "tests/io/io_test_util.hpp"

namespace {

using fg::test::check_error;
using fg::test::TempDir;
using fg::test::write_bytes;

fg::PreprocessingConfig text_and_label(std::vector<std::string> classes = {}) {
  fg::PreprocessingConfig c;
  fg::TextPreprocessing text;
  text.output_sequence_length = 4;
  c.fields.push_back({"text", false, text, {}});
  c.fields.push_back({"label", true, fg::CategoryPreprocessing{std::move(classes)}, {}});
  return c;
}

}  // namespace

TEST_CASE("preprocessors: adapt from a table, state_json round trip") {
  TempDir dir;
  write_bytes(dir.file("t.csv"), "text,label\nb b b,coat\na a,shirt\nc b a,coat\n,bag\n");
  const fg::Table table = fg::Table::read(dir.file("t.csv"));
  fg::Preprocessors p(text_and_label(), dir.path().string());
  CHECK(p.needs_adapt());
  p.adapt(table);
  CHECK_FALSE(p.needs_adapt());
  // b 4 times, a 3 times, c once; ids from 2.
  CHECK(p.text("text")->vocabulary() == std::vector<std::string>{"b", "a", "c"});
  CHECK(p.class_names("label") == std::vector<std::string>{"bag", "coat", "shirt"});
  CHECK(p.class_id("label", "shirt", "here") == 2);
  fg::SampleValue v;
  p.preprocess_input("text", "a c zz", "", "t.csv row 1", v);
  CHECK(v.dtype == fg::DType::i32);
  CHECK(v.i32 == std::vector<int32_t>{3, 4, 1, 0});
  CHECK(v.shape == fg::Dims{4});

  fg::Preprocessors loaded(text_and_label(), "");
  loaded.load_state_json(p.state_json(), "w.safetensors");
  CHECK_FALSE(loaded.needs_adapt());
  CHECK(loaded.text("text")->vocabulary() == p.text("text")->vocabulary());
  CHECK(loaded.class_names("label") == p.class_names("label"));

  fg::Preprocessors declared(text_and_label({"x", "y"}), "");
  check_error([&] { declared.load_state_json(p.state_json(), "w.safetensors"); },
              {"w.safetensors", "output 'label' declares the classes 'x', 'y'", "'bag'"});
  check_error([&] { loaded.load_state_json("{\"format\": 2}", "w.safetensors"); },
              {"w.safetensors", "fusiongraph-preprocessing-1"});
  check_error([&] { loaded.load_state_json("not json", "w.safetensors"); },
              {"w.safetensors", "not JSON"});
}

TEST_CASE("preprocessors: a column to learn from that the table lacks") {
  TempDir dir;
  write_bytes(dir.file("t.csv"), "words,label\nb,coat\n");
  fg::Preprocessors p(text_and_label(), "");
  check_error([&] { p.adapt(fg::Table::read(dir.file("t.csv"))); },
              {"t.csv", "no column 'text'", "'words', 'label'"});
}
