// The preprocessing of a graph's inputs and outputs as one object, used the same way by
// training (tables), evaluation, `run` and the API: one sample's value (a file path for images
// and audio, the text itself for text, a label for outputs) -> the tensor row the graph takes.
// It also holds what is learnt from the training data (adapted vocabularies, class lists),
// saved with the trained weights under the safetensors metadata key
// "fusiongraph.preprocessing" so that `run` maps words and classes exactly as training did.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/data/text_vectorizer.hpp"
#include "framework/preprocessing.hpp"

namespace fg {

struct GraphDef;
class Table;

// One preprocessed sample of one field.
struct SampleValue {
  DType dtype = DType::f32;
  std::vector<float> f32;
  std::vector<int32_t> i32;
  Dims shape;  // per sample (no batch)
};

constexpr const char* kPreprocessingMetadataKey = "fusiongraph.preprocessing";

class Preprocessors {
 public:
  Preprocessors() = default;
  // Vocabulary files are read here, relative to `graph_dir` (fg::Error naming the file).
  Preprocessors(PreprocessingConfig config, const std::string& graph_dir);
  // The graph's `preprocessing:` (parse_preprocessing), vocabulary files relative to the
  // graph file's folder.
  static Preprocessors for_graph(const GraphDef& graph);

  const PreprocessingConfig& config() const { return config_; }
  bool has_input(const std::string& name) const;
  bool has_output(const std::string& name) const;

  // True when something must be learnt from training data first (a text input without a
  // vocabulary file, a category output without classes).
  bool needs_adapt() const;
  // Learns it from a table's columns (column name = input / output name).
  void adapt(const Table& table);
  // The learnt state as JSON, and back (fg::Error naming `source` for a state that does not
  // fit the graph's config).
  std::string state_json() const;
  void load_state_json(const std::string& json, const std::string& source);

  // One input sample: `value` is a path (relative to `base_dir` unless absolute) or the text.
  // `where` names the row and column for messages ("test.csv row 3, column 'image'").
  void preprocess_input(const std::string& input, const std::string& value,
                        const std::string& base_dir, const std::string& where,
                        SampleValue& out) const;
  // One label of an output with `type: category`: its class id.
  int32_t class_id(const std::string& output, const std::string& label,
                   const std::string& where) const;
  // Class names of an output (empty when the output has no category preprocessing).
  const std::vector<std::string>& class_names(const std::string& output) const;
  const TextVectorizer* text(const std::string& input) const;

 private:
  PreprocessingConfig config_;
  std::map<std::string, TextVectorizer> text_;
  std::map<std::string, CategoryEncoder> categories_;
};

}  // namespace fg
