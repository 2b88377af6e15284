// TextVectorizer against Keras's documented and tested tokenization (the TextVectorization
// docstring of keras/src/layers/preprocessing/text_vectorization.py, Keras 3's
// text_vectorization_test.py and TF 2's keras/layers/preprocessing/text_vectorization_test.py),
// UTF-8 handling, adapt's order, vocabulary files; CategoryEncoder's labels.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/data/text_vectorizer.hpp"
#include "tests/io/io_test_util.hpp"
#include "tests/test_util.hpp"

namespace {

using Ids = std::vector<int32_t>;
using Tokens = std::vector<std::string>;

fg::TextPreprocessing config(
    fg::TextStandardize standardize = fg::TextStandardize::lower_and_strip_punctuation,
    fg::TextSplit split = fg::TextSplit::whitespace, int64_t max_tokens = 0,
    std::optional<int64_t> length = std::nullopt) {
  fg::TextPreprocessing c;
  c.standardize = standardize;
  c.split = split;
  c.max_tokens = max_tokens;
  c.output_sequence_length = length;
  return c;
}

fg::TextVectorizer with_vocabulary(const Tokens& tokens, fg::TextPreprocessing c = config()) {
  fg::TextVectorizer v(std::move(c));
  v.set_vocabulary(tokens);
  return v;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

using fg::test::error_of;

}  // namespace

TEST_CASE("text vectorizer: Keras's docstring examples") {
  // adapt(["foo bar", "bar baz", "baz bada boom"]) with max_tokens 5000 and
  // output_sequence_length 4: [["foo qux bar"], ["qux baz"]] -> [[4, 1, 3, 0], [1, 2, 0, 0]].
  fg::TextVectorizer v(
      config(fg::TextStandardize::lower_and_strip_punctuation, fg::TextSplit::whitespace, 5000, 4));
  v.adapt({"foo bar", "bar baz", "baz bada boom"});
  CHECK(v.encode("foo qux bar") == Ids{4, 1, 3, 0});
  CHECK(v.encode("qux baz") == Ids{1, 2, 0, 0});
  // counts bar 2, baz 2, then 1 each: ties high to low (np.lexsort((tokens, counts))[::-1])
  CHECK(v.vocabulary() == Tokens{"baz", "bar", "foo", "boom", "bada"});
  CHECK(v.vocabulary_size() == 7);

  // vocabulary ["earth", "wind", "and", "fire"]: get_vocabulary() is
  // ['', '[UNK]', 'earth', 'wind', 'and', 'fire'] so the ids are 2..5.
  auto e = with_vocabulary({"earth", "wind", "and", "fire"}, config(fg::TextStandardize::none));
  CHECK(e.vocabulary_size() == 6);
  // TF 2's test_int_output_densifies_with_zeros (standardize None, ragged)
  CHECK(e.encode("earth wind and also fire") == Ids{2, 3, 4, 1, 5});
  CHECK(e.encode("fire and earth michigan") == Ids{5, 4, 2, 1});
}

TEST_CASE("text vectorizer: Keras's tests of standardize and split") {
  // Keras 3 test_lower_and_strip_punctuation_standardization
  auto v = with_vocabulary({"hello", "world", "this", "is", "nice", "test"});
  CHECK(v.encode("Hello, World!. This is just a nice test!") == Ids{2, 3, 4, 5, 1, 1, 6, 7});
  // test_lower_standardization: punctuation kept
  v = with_vocabulary({"hello,", "hello", "world", "this", "is", "nice", "test"},
                      config(fg::TextStandardize::lower));
  CHECK(v.encode("Hello, World!. This is just a nice test!") == Ids{2, 1, 5, 6, 1, 1, 7, 1});
  // test_strip_punctuation_standardization: case kept
  v = with_vocabulary({"Hello", "World", "Test"}, config(fg::TextStandardize::strip_punctuation));
  CHECK(v.encode("Hello, World! Test.") == Ids{2, 3, 4});
  // test_no_standardization
  v = with_vocabulary({"Hello", "world"}, config(fg::TextStandardize::none));
  CHECK(v.encode("Hello hello") == Ids{2, 1});
  // test_char_splitting
  v = with_vocabulary(
      {"a", "b", "c", "d", "e"},
      config(fg::TextStandardize::lower_and_strip_punctuation, fg::TextSplit::character));
  CHECK(v.encode("abcf") == Ids{2, 3, 4, 1});

  // TF 2's test_normalization (each element on its own) and test_string_splitting
  fg::TextVectorizer t(config());
  CHECK(t.standardize("Earth wInD aNd firE") == "earth wind and fire");
  CHECK(t.standardize("fire| an<>d {earth} michigan@%$") == "fire and earth michigan");
  fg::TextVectorizer raw(config(fg::TextStandardize::none));
  CHECK(raw.split("\tfire\tand\nearth    michigan  ") ==
        Tokens{"fire", "and", "earth", "michigan"});
  CHECK(raw.split(" \v\f\r ").empty());
  CHECK(raw.split("").empty());
}

TEST_CASE("text vectorizer: punctuation is exactly Keras's 32 ASCII characters") {
  fg::TextVectorizer v(config(fg::TextStandardize::strip_punctuation));
  const std::string all = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  REQUIRE(all.size() == 32);
  CHECK(v.standardize("a" + all + "b") == "ab");
  // digits, letters, whitespace and non-ASCII punctuation stay (Keras's regex does not list
  // them): « » ¿ — …
  CHECK(v.standardize("x1 \t\u00ab\u00bb\u00bf\u2014\u2026") ==
        "x1 \t\u00ab\u00bb\u00bf\u2014\u2026");
  CHECK(v.standardize("don't") == "dont");  // removed, not replaced by a space
}

TEST_CASE("text vectorizer: UTF-8-aware lowercasing") {
  fg::TextVectorizer v(config(fg::TextStandardize::lower));
  // Latin-1 Supplement: À..Þ except × (U+00D7); ß and ÿ are already small
  CHECK(v.standardize("\u00c0\u00c9\u00ce\u00d5\u00dc\u00de\u00d7\u00df") ==
        "\u00e0\u00e9\u00ee\u00f5\u00fc\u00fe\u00d7\u00df");
  CHECK(v.standardize("CAF\u00c9 \u00c9MILE") == "caf\u00e9 \u00e9mile");
  // Latin Extended-A: Ā ā pairs, Ĺ (odd capitals), İ -> i, Ÿ -> ÿ, Ž -> ž, ı stays
  CHECK(v.standardize("\u0100\u0139\u0130\u0178\u017d\u0131\u0141\u0152") ==
        "\u0101\u013ai\u00ff\u017e\u0131\u0142\u0153");
  // Greek: ΑΒΓ..Ω, tonos forms, final Σ gets σ (simple mapping, no context)
  CHECK(v.standardize("\u0391\u0392\u0393\u03a9 \u0386\u0388\u038c\u038e\u038f \u03a3") ==
        "\u03b1\u03b2\u03b3\u03c9 \u03ac\u03ad\u03cc\u03cd\u03ce \u03c3");
  CHECK(v.standardize("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3") ==
        "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c3");  // ΟΔΥΣΣΕΥΣ
  // Cyrillic: Ё Ђ Џ (+80), А..Я (+32), Ѣ pairs, Ӏ -> ӏ, Ӂ (odd capitals), Ԁ (Supplement)
  CHECK(v.standardize("\u041f\u0420\u0418\u0412\u0415\u0422 \u0401\u0402\u040f\u042f") ==
        "\u043f\u0440\u0438\u0432\u0435\u0442 \u0451\u0452\u045f\u044f");
  CHECK(v.standardize("\u0462\u04c0\u04c1\u04d0\u0500") == "\u0463\u04cf\u04c2\u04d1\u0501");
  // outside the covered blocks: kept (Latin Extended-B Ǎ, Armenian Ա, fullwidth Ａ, 𝐀)
  CHECK(v.standardize("\u01cd\u0531\uff21\U0001d400") == "\u01cd\u0531\uff21\U0001d400");

  // a vocabulary of small letters matches capitals of every covered script
  auto w =
      with_vocabulary({"\u00e9t\u00e9", "\u03bb\u03cc\u03b3\u03bf\u03c2", "\u043c\u0438\u0440"});
  CHECK(w.encode("\u00c9T\u00c9, \u039b\u038c\u0393\u039f\u03c2! \u041c\u0418\u0420?") ==
        Ids{2, 3, 4});
}

TEST_CASE("text vectorizer: invalid UTF-8 is an error at its byte, naming the row") {
  fg::TextVectorizer v(config());
  const auto fails = [&](const std::string& text, const std::string& want) {
    const std::string m = error_of([&] { v.encode(text, "train.csv row 12 column 'text'"); });
    INFO(m);
    CHECK(m.find("train.csv row 12 column 'text': not valid UTF-8 at byte " + want) !=
          std::string::npos);
  };
  fails("ok \xff", "3 (0xFF: a byte that never occurs");
  fails("caf\xc3", "3 (0xC3: a multi-byte sequence cut short by the end");
  fails("ab\xc3(", "2 (0xC3: a multi-byte sequence cut short)");
  fails("\x80xyz", "0 (0x80: a continuation byte with no lead byte");
  fails("abcd\xc0\xaf", "4 (0xC0: a byte that never occurs");  // overlong '/'
  fails("abcdefg\xe0\x80\xaf", "7 (0xE0: an overlong encoding");
  fails("\xed\xa0\x80", "0 (0xED: an encoded surrogate");
  fails("\u00e9\u00e9\xf4\x90\x80\x80", "4 (0xF4: a code point above U+10FFFF");
  CHECK(error_of([&] { v.standardize("\xfe"); }).find("text: not valid UTF-8 at byte 0") !=
        std::string::npos);
  // with standardize none and character split too
  fg::TextVectorizer raw(config(fg::TextStandardize::none, fg::TextSplit::character));
  CHECK(error_of([&] { raw.encode("\xe2\x82", "x"); }).find("x: not valid UTF-8 at byte 0") !=
        std::string::npos);
  // the largest valid code points pass
  CHECK(raw.split("\U0010ffff\ud7ff").size() == 2);
}

TEST_CASE("text vectorizer: character split by code point") {
  fg::TextVectorizer v(config(fg::TextStandardize::lower, fg::TextSplit::character));
  // 1-, 2-, 3- and 4-byte code points; spaces are tokens too (tf.strings.unicode_split)
  CHECK(v.split(v.standardize("a\u00c9 \u20ac\U0001f600")) ==
        Tokens{"a", "\u00e9", " ", "\u20ac", "\U0001f600"});
  auto w = with_vocabulary({"\u043c", "\u0438", "\u0440"},
                           config(fg::TextStandardize::lower, fg::TextSplit::character));
  CHECK(w.encode("\u041c\u0418\u0420 \u043c") == Ids{2, 3, 4, 1, 2});
}

TEST_CASE("text vectorizer: adapt's frequency order, ties and max_tokens") {
  // TF 2's test_documents_int_mode: counts earth 4, wind 3, and 2, fire 1
  fg::TextVectorizer v(config(fg::TextStandardize::none));
  v.adapt({"fire earth earth", "earth earth", "wind wind", "and wind and"});
  CHECK(v.vocabulary() == Tokens{"earth", "wind", "and", "fire"});
  CHECK(v.encode("earth wind and") == Ids{2, 3, 4});
  CHECK(v.encode("fire fire") == Ids{5, 5});
  CHECK(v.encode("and earth") == Ids{4, 2});
  CHECK(v.encode("michigan") == Ids{1});

  // Keras 3's test_max_tokens: max_tokens 5 keeps 3 tokens; all counts 1, so the highest three
  fg::TextVectorizer cut(
      config(fg::TextStandardize::lower_and_strip_punctuation, fg::TextSplit::whitespace, 5));
  cut.adapt({"a b c d e f g h i j"});
  CHECK(cut.vocabulary_size() == 5);
  CHECK(cut.vocabulary() == Tokens{"j", "i", "h"});

  // ties by byte order, high to low: "b" > "a" > "Z" > "A"; the capital É (0xC3 0x89) sorts
  // above every ASCII token; 12 tokens and max_tokens 7 cut ties inside a count
  fg::TextVectorizer ties(config(fg::TextStandardize::none, fg::TextSplit::whitespace, 7));
  ties.adapt({"A Z a b \u00c9 x x x", "y y q q r s t u"});
  CHECK(ties.vocabulary() == Tokens{"x", "y", "q", "\u00c9", "u"});
  // the padding and OOV strings are never learnt (Keras removes them from the counts)
  fg::TextVectorizer special(config(fg::TextStandardize::none));
  special.adapt({"[UNK] [UNK] [UNK] w"});
  CHECK(special.vocabulary() == Tokens{"w"});
  // streamed: the same as adapt
  fg::TextVectorizer streamed(config(fg::TextStandardize::none));
  for (const char* t : {"fire earth earth", "earth earth", "wind wind", "and wind and"})
    streamed.count_tokens(t);
  streamed.finish_adapt();
  CHECK(streamed.vocabulary() == v.vocabulary());
  // invalid UTF-8 while adapting names the text
  CHECK(error_of([&] {
          v.adapt({"ok", "bad \xff"});
        }).find("text 2 of the adapt data: not valid UTF-8 at byte 4") != std::string::npos);
}

TEST_CASE("text vectorizer: padding and truncation") {
  auto v = with_vocabulary({"a", "b", "c"}, config(fg::TextStandardize::lower_and_strip_punctuation,
                                                   fg::TextSplit::whitespace, 0, 7));
  CHECK(v.encode("a b c d") == Ids{2, 3, 4, 1, 0, 0, 0});
  CHECK(v.encode("") == Ids(7, 0));
  CHECK(v.encode("c c c c c c c c c c c c c a") == Ids(7, 4));  // 14 tokens cut to 7
  auto one =
      with_vocabulary({"a"}, config(fg::TextStandardize::none, fg::TextSplit::whitespace, 0, 1));
  CHECK(one.encode("z a") == Ids{1});
  // null length: every token (ragged)
  auto all = with_vocabulary({"a"});
  CHECK(all.encode(std::string(127, 'a').replace(1, 125, std::string(125, ' '))) == Ids{2, 2});
  CHECK(all.encode("").empty());
}

TEST_CASE("text vectorizer: vocabulary files") {
  fg::test::TempDir dir;
  const std::string path = dir.file("vocab.txt");
  // Keras 3's test_vocabulary_from_file
  write(path, "foo\nbar\nbaz\n");
  fg::TextVectorizer v(config());
  v.load_vocabulary(path);
  CHECK(v.encode("foo bar baz unknown") == Ids{2, 3, 4, 1});

  // CRLF, no final newline, UTF-8 tokens, trailing empty lines ignored
  write(path, "\u00e9t\u00e9\r\nhiver\r\n\u03bb\r\n\r\n");
  v.load_vocabulary(path);
  CHECK(v.vocabulary() == Tokens{"\u00e9t\u00e9", "hiver", "\u03bb"});
  write(path, "a\r\nb");
  v.load_vocabulary(path);
  CHECK(v.vocabulary() == Tokens{"a", "b"});
  // Keras's get_vocabulary() export: '' and '[UNK]' first, skipped
  write(path, "\n[UNK]\nearth\nwind\n");
  v.load_vocabulary(path);
  CHECK(v.vocabulary() == Tokens{"earth", "wind"});

  const auto fails = [&](const std::string& bytes, const std::string& at,
                         const std::string& message) {
    write(path, bytes);
    fg::TextVectorizer t(
        config(fg::TextStandardize::lower_and_strip_punctuation, fg::TextSplit::whitespace, 5));
    const std::string m = error_of([&] { t.load_vocabulary(path); });
    INFO(m);
    CHECK(m.find(path + at) != std::string::npos);
    CHECK(m.find(message) != std::string::npos);
  };
  fails("a\nb\n\nc\n", ":3:1: error: line 3 of the vocabulary is empty", "remove the empty line");
  fails("a\r\n\r\nc\r\n", ":2:1: error: line 2 of the vocabulary is empty", "");
  fails("a\nb\nc\nb\n", ":4:1: error: line 4 of the vocabulary repeats the token 'b' of line 2",
        "line n is id n + 1");
  fails("a\nb\xc3(\n", ":2:2: error: line 2 of the vocabulary is not valid UTF-8 at byte 1",
        "must be UTF-8");
  fails("a\n[UNK]\n", ":2:1: error: line 2 of the vocabulary is the out-of-vocabulary token", "");
  fails("\n\n", ": error: the vocabulary file has no tokens", "");
  fails("a\nb\nc\nd\n", ": error: the vocabulary has 4 tokens, more than max_tokens 5 allows",
        "raise max_tokens to at least 6");
  CHECK(error_of([&] { v.load_vocabulary(dir.file("missing.txt")); }).find("missing.txt") !=
        std::string::npos);
  CHECK(error_of([&] {
          v.set_vocabulary({"a", "b", "a"});
        }).find("the vocabulary lists 'a' twice (ids 2 and 4)") != std::string::npos);
}

TEST_CASE("category encoder: classes from the config or the data, ids, errors") {
  fg::CategoryPreprocessing c;
  c.classes = {"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt"};
  fg::CategoryEncoder e(c);
  CHECK(e.id_of("t-shirt") == 0);
  CHECK(e.id_of("shirt") == 6);
  CHECK(e.id_of("3") == 3);  // a decimal id in range
  e.adapt({"x", "y"});       // classes from the config: unchanged
  CHECK(e.classes().size() == 7);

  std::string m = error_of([&] { e.id_of("trousers", "test.csv row 3 column 'label'"); });
  CHECK(m.find("test.csv row 3 column 'label': label 'trousers' is not one of the 7 classes "
               "('t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt') nor a "
               "class id 0 to 6") != std::string::npos);
  CHECK(m.find("hint: did you mean 'trouser'?") != std::string::npos);
  CHECK(error_of([&] { e.id_of("7"); }).find("label '7' is not one of the 7 classes") !=
        std::string::npos);
  CHECK(error_of([&] { e.id_of("-1"); }).find("label '-1'") != std::string::npos);
  CHECK(error_of([&] { e.id_of(""); }).find("label ''") != std::string::npos);

  // from the data: distinct, byte-sorted; all-decimal labels sorted by value
  fg::CategoryEncoder names{fg::CategoryPreprocessing{}};
  names.adapt({"dog", "cat", "dog", "bird", "Cat"});
  CHECK(names.classes() == Tokens{"Cat", "bird", "cat", "dog"});
  CHECK(names.id_of("dog") == 3);
  fg::CategoryEncoder digits{fg::CategoryPreprocessing{}};
  digits.adapt({"10", "2", "0", "1", "2", "9"});
  CHECK(digits.classes() == Tokens{"0", "1", "2", "9", "10"});
  CHECK(digits.id_of("10") == 4);  // the class named "10", not id 10
  CHECK(digits.id_of("3") == 3);   // no class "3": id 3 (class "9")
  digits.adapt({"b", "a"});        // a second adapt replaces the first
  CHECK(digits.classes() == Tokens{"a", "b"});
  CHECK(error_of([&] {
          digits.adapt({"a", ""});
        }).find("label 2 of the adapt data is empty") != std::string::npos);

  // many classes: the list is cut after 20
  fg::CategoryEncoder many{fg::CategoryPreprocessing{}};
  std::vector<std::string> labels;
  for (int i = 0; i < 127; ++i) labels.push_back("class_" + std::to_string(1000 + i));
  many.adapt(labels);
  m = error_of([&] { many.id_of("nope"); });
  CHECK(m.find("not one of the 127 classes ('class_1000',") != std::string::npos);
  CHECK(m.find("'class_1019', ...) nor a class id 0 to 126") != std::string::npos);
  // no classes at all
  fg::CategoryEncoder none{fg::CategoryPreprocessing{}};
  CHECK(error_of([&] { none.id_of("a"); }).find("the output has no classes yet") !=
        std::string::npos);
}
