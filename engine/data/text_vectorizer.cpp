// Keras's TextVectorization (output_mode "int") and class labels. The definitions followed are
// keras/src/layers/preprocessing/text_vectorization.py (_preprocess: lowercase, then remove the
// regex [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\'], then tf.strings.split or
// tf.strings.unicode_split) and keras/src/layers/preprocessing/index_lookup.py (finalize_state:
// np.lexsort((tokens, counts))[::-1], at most max_tokens - 2 tokens in "int" mode). Where
// FusionGraph differs (UTF-8-aware lowercasing, invalid UTF-8 refused) docs/data.md says so.
#include "engine/data/text_vectorizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "framework/regular_file.hpp"

namespace fg {

namespace {

constexpr const char* kOovToken = "[UNK]";  // Keras's oov_token for TextVectorization

// One code point decoded from s[i...]; `length` 0 when the bytes there are not UTF-8 (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), with `problem` saying why.
struct Decoded {
  char32_t code_point = 0;
  size_t length = 0;
  const char* problem = "";
};

Decoded decode_utf8(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return {lead, 1, ""};
  size_t length = 0;
  char32_t cp = 0, min = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return {0, 0,
            lead >= 0x80 && lead <= 0xBF ? "a continuation byte with no lead byte"
                                         : "a byte that never occurs in UTF-8"};
  }
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= s.size()) return {0, 0, "a multi-byte sequence cut short by the end"};
    if ((byte(i + k) & 0xC0) != 0x80) return {0, 0, "a multi-byte sequence cut short"};
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min) return {0, 0, "an overlong encoding"};
  if (cp >= 0xD800 && cp <= 0xDFFF) return {0, 0, "an encoded surrogate (U+D800 to U+DFFF)"};
  if (cp > 0x10FFFF) return {0, 0, "a code point above U+10FFFF"};
  return {cp, length, ""};
}

// Throws the error for invalid UTF-8 at byte `offset` of `text`.
[[noreturn]] void throw_invalid(const std::string& text, size_t offset, const char* problem,
                                const std::string& where) {
  const std::string prefix = where.empty() ? "text" : where;
  throw Error(fmt::format("{}: not valid UTF-8 at byte {} (0x{:02X}: {})", prefix, offset,
                          static_cast<unsigned char>(text[offset]), problem))
      .hint("text must be UTF-8 (bytes counted from 0); convert it, e.g. with iconv -t UTF-8");
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// In [first, last], the capital at an even (or, `odd_capitals`, odd) code point is followed by
// its small letter.
bool paired(char32_t cp, char32_t first, char32_t last, bool odd_capitals = false) {
  return cp >= first && cp <= last && (cp % 2 == 1) == odd_capitals;
}

char32_t lowercase_greek(char32_t cp) {
  if (cp >= 0x0391 && cp <= 0x03AB && cp != 0x03A2) return cp + 32;  // Α..Ϋ
  if (cp == 0x0386) return 0x03AC;                                   // Ά
  if (cp >= 0x0388 && cp <= 0x038A) return cp + 37;                  // Έ Ή Ί
  if (cp == 0x038C) return 0x03CC;                                   // Ό
  if (cp == 0x038E || cp == 0x038F) return cp + 63;                  // Ύ Ώ
  if (cp == 0x0370 || cp == 0x0372 || cp == 0x0376) return cp + 1;   // Ͱ Ͳ Ͷ
  if (cp == 0x037F) return 0x03F3;                                   // Ϳ
  if (cp == 0x03CF) return 0x03D7;                                   // Ϗ
  if (paired(cp, 0x03D8, 0x03EF)) return cp + 1;                     // Ϙ..Ϯ
  if (cp == 0x03F4) return 0x03B8;                                   // ϴ
  if (cp == 0x03F7 || cp == 0x03FA) return cp + 1;                   // Ϸ Ϻ
  if (cp == 0x03F9) return 0x03F2;                                   // Ϲ
  if (cp >= 0x03FD && cp <= 0x03FF) return cp - 130;                 // Ͻ Ͼ Ͽ
  return cp;
}

char32_t lowercase_cyrillic(char32_t cp) {
  if (cp >= 0x0400 && cp <= 0x040F) return cp + 80;  // Ѐ..Џ
  if (cp >= 0x0410 && cp <= 0x042F) return cp + 32;  // А..Я
  if (paired(cp, 0x0460, 0x0481) || paired(cp, 0x048A, 0x04BF)) return cp + 1;
  if (cp == 0x04C0) return 0x04CF;                      // Ӏ
  if (paired(cp, 0x04C1, 0x04CE, true)) return cp + 1;  // Ӂ..Ӎ
  if (paired(cp, 0x04D0, 0x052F)) return cp + 1;        // Ӑ..Ԯ (and Cyrillic Supplement)
  return cp;
}

// Unicode's simple lowercase mapping (UnicodeData.txt field 13) for Basic Latin, Latin-1
// Supplement, Latin Extended-A, Greek and Coptic, Cyrillic and Cyrillic Supplement; every other
// code point is kept.
char32_t simple_lowercase(char32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  if (cp >= 0x00C0 && cp <= 0x00DE && cp != 0x00D7) return cp + 32;  // À..Þ except ×
  if (cp >= 0x0100 && cp <= 0x017F) {
    if (cp == 0x0130) return 'i';     // İ
    if (cp == 0x0178) return 0x00FF;  // Ÿ
    if (paired(cp, 0x0100, 0x012F) || paired(cp, 0x0132, 0x0137) || paired(cp, 0x014A, 0x0177))
      return cp + 1;
    if (paired(cp, 0x0139, 0x0148, true) || paired(cp, 0x0179, 0x017E, true)) return cp + 1;
    return cp;
  }
  if (cp >= 0x0370 && cp <= 0x03FF) return lowercase_greek(cp);
  if (cp >= 0x0400 && cp <= 0x052F) return lowercase_cyrillic(cp);
  return cp;
}

// Keras's DEFAULT_STRIP_REGEX set: the 32 ASCII punctuation characters (Python's
// string.punctuation). Other punctuation (« », ¿, em dashes) is kept, as in Keras.
bool strip_punctuation_char(char32_t cp) {
  static constexpr char kSet[] = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'";
  return cp < 0x80 && cp != 0 &&
         std::char_traits<char>::find(kSet, sizeof kSet - 1, static_cast<char>(cp)) != nullptr;
}

// TensorFlow's whitespace for tf.strings.split with no separator: ASCII space, \t \n \v \f \r.
bool split_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_decimal(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int64_t decimal_value(const std::string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// The lines of a vocabulary file ('\n' or "\r\n"; a last line without '\n' counts; nothing
// after the final '\n' is a line).
std::vector<std::string> file_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

}  // namespace

TextVectorizer::TextVectorizer(TextPreprocessing config) : config_(std::move(config)) {}

void TextVectorizer::load_vocabulary(const std::string& path) {
  std::vector<std::string> lines = file_lines(read_regular_file(path, kMaxVocabularyFileBytes));
  // Keras's own export (get_vocabulary() written one per line) starts with the padding ''
  // and the OOV '[UNK]': accepted, both skipped.
  size_t first = 0;
  if (lines.size() >= 2 && lines[0].empty() && lines[1] == kOovToken) first = 2;
  // Empty lines at the end are ignored (as Keras's load_assets does); elsewhere an error.
  while (lines.size() > first && lines.back().empty()) lines.pop_back();
  if (lines.size() == first)
    throw Error("the vocabulary file has no tokens")
        .in_file(path)
        .hint("one token per line; leave `vocabulary` out to build it from the training data");
  std::vector<std::string> tokens;
  std::unordered_map<std::string, size_t> line_of;
  for (size_t i = first; i < lines.size(); ++i) {
    const std::string& token = lines[i];
    const SourceLoc loc{path, static_cast<int>(i + 1), 1};
    if (token.empty())
      throw Error(fmt::format("line {} of the vocabulary is empty", i + 1))
          .at(loc)
          .hint(
              "one token per line, without the padding and out-of-vocabulary entries "
              "(ids 0 and 1); remove the empty line");
    for (size_t b = 0; b < token.size();) {
      const Decoded d = decode_utf8(token, b);
      if (d.length == 0)
        throw Error(fmt::format("line {} of the vocabulary is not valid UTF-8 at byte {} of "
                                "the line (0x{:02X}: {})",
                                i + 1, b, static_cast<unsigned char>(token[b]), d.problem))
            .at(SourceLoc{path, static_cast<int>(i + 1), static_cast<int>(b + 1)})
            .hint("the vocabulary file must be UTF-8");
      b += d.length;
    }
    if (token == kOovToken)
      throw Error(fmt::format("line {} of the vocabulary is the out-of-vocabulary token '{}'",
                              i + 1, kOovToken))
          .at(loc)
          .hint(
              "id 1 is reserved for it: list only the real tokens (or start the file with an "
              "empty line and [UNK], as Keras's get_vocabulary() does)");
    auto [it, fresh] = line_of.emplace(token, i + 1);
    if (!fresh)
      throw Error(fmt::format("line {} of the vocabulary repeats the token '{}' of line {}", i + 1,
                              token, it->second))
          .at(loc)
          .hint("each token once: its line gives its id (line 1 is id 2, line n is id n + 1)");
    tokens.push_back(token);
  }
  try {
    set_vocabulary(std::move(tokens));
  } catch (Error& e) {
    throw e.in_file(path);
  }
}

void TextVectorizer::set_vocabulary(std::vector<std::string> tokens) {
  if (config_.max_tokens > 0 && static_cast<int64_t>(tokens.size()) + 2 > config_.max_tokens)
    throw Error(fmt::format("the vocabulary has {} tokens, more than max_tokens {} allows ({} "
                            "with the padding and out-of-vocabulary ids)",
                            tokens.size(), config_.max_tokens, config_.max_tokens - 2))
        .hint(fmt::format("raise max_tokens to at least {} or shorten the vocabulary",
                          tokens.size() + 2));
  if (tokens.size() > static_cast<size_t>(INT32_MAX - 2))
    throw Error("the vocabulary has more tokens than int32 ids can number");
  std::vector<std::pair<std::string, int32_t>> ids;
  ids.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i)
    ids.emplace_back(tokens[i], static_cast<int32_t>(i + 2));
  std::sort(ids.begin(), ids.end());
  for (size_t i = 1; i < ids.size(); ++i)
    if (ids[i].first == ids[i - 1].first)
      throw Error(fmt::format("the vocabulary lists '{}' twice (ids {} and {})", ids[i].first,
                              std::min(ids[i].second, ids[i - 1].second),
                              std::max(ids[i].second, ids[i - 1].second)));
  vocabulary_ = std::move(tokens);
  sorted_ids_ = std::move(ids);
}

void TextVectorizer::count_tokens(const std::string& text, const std::string& where) {
  for (auto& token : split(standardize(text, where))) ++counts_[token];
}

void TextVectorizer::finish_adapt() {
  // Keras removes the mask ('') and OOV tokens from the counts, then sorts by count and breaks
  // ties by the token, both descending (np.lexsort((tokens, counts))[::-1]; byte order).
  counts_.erase("");
  counts_.erase(kOovToken);
  std::vector<std::pair<int64_t, std::string>> order;
  order.reserve(counts_.size());
  for (auto& [token, count] : counts_) order.emplace_back(count, token);
  counts_.clear();
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a > b; });
  if (config_.max_tokens > 0 && static_cast<int64_t>(order.size()) > config_.max_tokens - 2)
    order.resize(static_cast<size_t>(config_.max_tokens - 2));
  std::vector<std::string> tokens;
  tokens.reserve(order.size());
  for (auto& entry : order) tokens.push_back(std::move(entry.second));
  set_vocabulary(std::move(tokens));
}

void TextVectorizer::adapt(const std::vector<std::string>& texts) {
  counts_.clear();
  for (size_t i = 0; i < texts.size(); ++i)
    count_tokens(texts[i], fmt::format("text {} of the adapt data", i + 1));
  finish_adapt();
}

std::string TextVectorizer::standardize(const std::string& text, const std::string& where) const {
  const bool lower = config_.standardize == TextStandardize::lower ||
                     config_.standardize == TextStandardize::lower_and_strip_punctuation;
  const bool strip = config_.standardize == TextStandardize::strip_punctuation ||
                     config_.standardize == TextStandardize::lower_and_strip_punctuation;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Decoded d = decode_utf8(text, i);
    if (d.length == 0) throw_invalid(text, i, d.problem, where);
    if (!(strip && strip_punctuation_char(d.code_point))) {
      if (lower)
        append_utf8(out, simple_lowercase(d.code_point));
      else
        out.append(text, i, d.length);
    }
    i += d.length;
  }
  return out;
}

std::vector<std::string> TextVectorizer::split(const std::string& standardized) const {
  std::vector<std::string> tokens;
  const std::string& s = standardized;
  if (config_.split == TextSplit::character) {
    for (size_t i = 0; i < s.size();) {
      const Decoded d = decode_utf8(s, i);
      if (d.length == 0) throw_invalid(s, i, d.problem, "");
      tokens.push_back(s.substr(i, d.length));
      i += d.length;
    }
    return tokens;
  }
  for (size_t i = 0; i < s.size();) {
    while (i < s.size() && split_space(s[i])) ++i;
    size_t end = i;
    while (end < s.size() && !split_space(s[end])) ++end;
    if (end > i) tokens.push_back(s.substr(i, end - i));
    i = end;
  }
  return tokens;
}

std::vector<int32_t> TextVectorizer::encode(const std::string& text,
                                            const std::string& where) const {
  std::vector<int32_t> ids;
  for (const auto& token : split(standardize(text, where))) {
    if (config_.output_sequence_length &&
        static_cast<int64_t>(ids.size()) == *config_.output_sequence_length)
      break;
    auto it =
        std::lower_bound(sorted_ids_.begin(), sorted_ids_.end(), token,
                         [](const auto& entry, const std::string& t) { return entry.first < t; });
    ids.push_back(it != sorted_ids_.end() && it->first == token ? it->second : 1);
  }
  if (config_.output_sequence_length)
    ids.resize(static_cast<size_t>(*config_.output_sequence_length), 0);
  return ids;
}

CategoryEncoder::CategoryEncoder(CategoryPreprocessing config)
    : classes_(std::move(config.classes)), from_config_(!classes_.empty()) {}

void CategoryEncoder::adapt(const std::vector<std::string>& labels) {
  if (from_config_) return;
  std::vector<std::string> distinct;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty())
      throw Error(fmt::format("label {} of the adapt data is empty", i + 1))
          .hint("every sample needs a class name (or id)");
    distinct.push_back(labels[i]);
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (std::all_of(distinct.begin(), distinct.end(), is_decimal))
    std::stable_sort(distinct.begin(), distinct.end(), [](const auto& a, const auto& b) {
      return decimal_value(a) < decimal_value(b);
    });
  classes_ = std::move(distinct);
}

int32_t CategoryEncoder::id_of(const std::string& label, const std::string& where) const {
  const auto it = std::find(classes_.begin(), classes_.end(), label);
  if (it != classes_.end()) return static_cast<int32_t>(it - classes_.begin());
  if (is_decimal(label) && decimal_value(label) < static_cast<int64_t>(classes_.size()))
    return static_cast<int32_t>(decimal_value(label));
  const std::string prefix = where.empty() ? "" : where + ": ";
  if (classes_.empty())
    throw Error(fmt::format("{}label '{}': the output has no classes yet", prefix, label))
        .hint("list them with `classes: [...]` or let training learn them from the data");
  std::vector<std::string> shown(classes_.begin(),
                                 classes_.begin() + std::min<size_t>(classes_.size(), 20));
  const std::string listed = quoted_list(shown) + (classes_.size() > 20 ? ", ..." : "");
  const std::string best = closest_match(label, classes_);
  throw Error(fmt::format("{}label '{}' is not one of the {} classes ({}) nor a class id 0 to {}",
                          prefix, label, classes_.size(), listed, classes_.size() - 1))
      .hint(best.empty() ? "use a class name or id from the list"
                         : fmt::format("did you mean '{}'?", best));
}

}  // namespace fg
