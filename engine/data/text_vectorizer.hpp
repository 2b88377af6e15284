// Text as Keras's TextVectorization (output_mode "int"): standardize, split, map tokens to ids
// (0 padding, 1 out-of-vocabulary, the vocabulary from 2), pad or truncate (docs/data.md).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/preprocessing.hpp"

namespace fg {

class TextVectorizer {
 public:
  explicit TextVectorizer(TextPreprocessing config);

  // Vocabulary file: one token per line (UTF-8, '\n' or "\r\n"), the token on line i (from 0)
  // gets id i + 2; fg::Error naming the file and line for an empty or duplicate token, invalid
  // UTF-8.
  void load_vocabulary(const std::string& path);
  void set_vocabulary(std::vector<std::string> tokens);  // without padding and OOV
  // Keras's adapt: tokens by descending frequency, ties broken as Keras does, at most
  // max_tokens - 2 of them.
  void adapt(const std::vector<std::string>& texts);
  // The same, streamed (memory bounded by the distinct tokens, not the texts): count_tokens for
  // each text (`where` names it in errors), then finish_adapt sets the vocabulary and forgets
  // the counts. adapt(texts) is count_tokens for each, then finish_adapt.
  void count_tokens(const std::string& text, const std::string& where = "");
  void finish_adapt();

  // Throws fg::Error ("not valid UTF-8 at byte N") naming `where` (e.g. "train.csv row 12
  // column 'text'") for text that is not UTF-8.
  std::string standardize(const std::string& text, const std::string& where = "") const;
  std::vector<std::string> split(const std::string& standardized) const;
  // Token ids; padded with 0 / truncated to output_sequence_length when it is set.
  std::vector<int32_t> encode(const std::string& text, const std::string& where = "") const;

  const std::vector<std::string>& vocabulary() const { return vocabulary_; }  // ids 2..
  int64_t vocabulary_size() const { return static_cast<int64_t>(vocabulary_.size()) + 2; }
  const TextPreprocessing& config() const { return config_; }

 private:
  TextPreprocessing config_;
  std::vector<std::string> vocabulary_;
  std::vector<std::pair<std::string, int32_t>> sorted_ids_;  // for lookups
  std::unordered_map<std::string, int64_t> counts_;          // adapt in progress
};

// The largest vocabulary file read (docs/data.md).
constexpr uint64_t kMaxVocabularyFileBytes = uint64_t(256) << 20;  // 256 MiB

// Class labels (`type: category`): names <-> ids.
class CategoryEncoder {
 public:
  explicit CategoryEncoder(CategoryPreprocessing config);
  // Classes from the training data when the config has none: the distinct labels, sorted (by
  // value when every label is a decimal integer, so "2" < "10"; else byte-wise). With classes
  // in the config it does nothing; otherwise it replaces what an earlier adapt learnt. An empty
  // label is an fg::Error.
  void adapt(const std::vector<std::string>& labels);
  // The id of a label: a class name, or (when no class is named so) a decimal id in range.
  // fg::Error naming `where` and listing the classes (did-you-mean) otherwise.
  int32_t id_of(const std::string& label, const std::string& where = "") const;
  const std::vector<std::string>& classes() const { return classes_; }

 private:
  std::vector<std::string> classes_;
  bool from_config_ = false;  // classes listed in the config: adapt keeps them
};

}  // namespace fg
