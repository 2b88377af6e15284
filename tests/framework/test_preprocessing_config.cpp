// `preprocessing:` per input and per output (outputs as a mapping): the issue's example with its
// values and the defaults docs/data.md states, and every malformed key as an fg::Error at the
// file:line:column of the offending value with the message and its hint.
#include <doctest/doctest.h>

#include <string>

#include "framework/preprocessing.hpp"
#include "framework/yaml_loader.hpp"
#include "tests/test_util.hpp"

namespace {

// A graph whose line 3 is `input_line` (one input, `x`, written in full by the test) and whose
// outputs section (line 6) is `outputs_line`.
std::string graph(const std::string& input_line,
                  const std::string& outputs_line = "outputs: [out]") {
  return "name: p\n"
         "inputs:\n" +
         input_line +
         "\n"
         "nodes:\n"
         "  - {name: out, op: flatten, input: x}\n" +
         outputs_line + "\n";
}

fg::PreprocessingConfig parse(const std::string& yaml, const std::string& file = "p.yaml") {
  return fg::parse_preprocessing(*fg::load_graph_string(yaml, file));
}

struct Failure {
  std::string message, hint;
  int line = 0, column = 0;
};

Failure failure(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const fg::Error& e) {
    return {e.what(), e.hint_text(), e.loc().line, e.loc().column};
  }
  return {};
}

// 1-based column where `needle` starts in `line` (the tests name the text the error must point
// at instead of counting columns by hand).
int column_of(const std::string& line, const std::string& needle) {
  const size_t at = line.find(needle);
  REQUIRE(at != std::string::npos);
  REQUIRE(line.find(needle, at + 1) == std::string::npos);  // unique
  return static_cast<int>(at) + 1;
}

// The error of a graph whose input line is `line`: at line 3, where `needle` starts, with
// `text` in the message and `hint` in the hint.
#define CHECK_INPUT_FAILS(input_line, needle, text_, hint_)   \
  do {                                                        \
    const std::string line_ = (input_line);                   \
    const Failure f_ = failure(graph(line_));                 \
    INFO(line_);                                              \
    INFO(f_.message);                                         \
    CHECK(f_.line == 3);                                      \
    CHECK(f_.column == column_of(line_, needle));             \
    CHECK(f_.message.find(text_) != std::string::npos);       \
    CHECK(f_.message.find("p.yaml:3:") != std::string::npos); \
    CHECK(f_.hint.find(hint_) != std::string::npos);          \
  } while (0)

const std::string kImage = "  x: {shape: [28, 28, 1], preprocessing: ";
const std::string kAudio = "  x: {shape: [null, 1], preprocessing: ";
const std::string kText = "  x: {shape: [null], dtype: int32, preprocessing: ";

std::string image(const std::string& keys) {
  return kImage + "{type: image, height: 28, width: 28, channels: 1" + keys + "}}";
}
std::string audio(const std::string& keys) {
  return kAudio + "{type: audio" + keys + "}}";
}
std::string text(const std::string& keys) {
  return kText + "{type: text" + keys + "}}";
}

}  // namespace

TEST_CASE("preprocessing config: the issue's example, with every value and default") {
  const std::string yaml = R"(name: example
inputs:
  image: {shape: [28, 28, 1], preprocessing: {type: image, height: 28, width: 28, channels: 1, resize: bilinear, rescale: 0.00392156862745098}}
  audio: {shape: [null, 1], preprocessing: {type: audio, sample_rate: 16000, mono: true, max_length: 16000}}
  text:  {shape: [null], dtype: int32, preprocessing: {type: text, standardize: lower_and_strip_punctuation, split: whitespace, max_tokens: 1000, output_sequence_length: 20}}
nodes:
  - {name: classifier, op: flatten, input: image}
outputs:
  classifier: {preprocessing: {type: category}}
)";
  const auto def = fg::load_graph_string(yaml, "graphs/example.yaml");
  REQUIRE(def->outputs == std::vector<std::string>{"classifier"});
  REQUIRE(def->output_locs.size() == 1);
  CHECK(def->output_locs[0].line == 9);
  CHECK(def->output_locs[0].column == 3);
  REQUIRE(def->output_preprocessing.size() == 1);
  REQUIRE(def->output_preprocessing[0].has_value());
  REQUIRE(def->inputs[0].preprocessing.has_value());
  CHECK(def->inputs[0].preprocessing->loc.line == 3);

  const fg::PreprocessingConfig c = fg::parse_preprocessing(*def);
  REQUIRE(c.fields.size() == 4);
  CHECK(c.fields[0].name == "image");
  CHECK(c.fields[3].name == "classifier");
  CHECK(c.fields[3].output);
  CHECK(c.fields[2].loc.line == 5);

  const auto& img = std::get<fg::ImagePreprocessing>(c.input("image")->spec);
  CHECK(img.height == 28);
  CHECK(img.width == 28);
  CHECK(img.channels == 1);
  CHECK(img.resize == fg::ResizeMethod::bilinear);
  CHECK(img.rescale == doctest::Approx(1.0 / 255.0).epsilon(1e-15));
  CHECK(img.offset == 0.0);
  CHECK_FALSE(img.crop_to_aspect_ratio);
  CHECK(img.mean.empty());
  CHECK(img.std.empty());

  const auto& snd = std::get<fg::AudioPreprocessing>(c.input("audio")->spec);
  CHECK(snd.sample_rate == 16000);
  CHECK(snd.mono);
  REQUIRE(snd.max_length.has_value());
  CHECK(*snd.max_length == 16000);
  CHECK(snd.normalize == fg::AudioNormalize::none);
  CHECK(snd.features == fg::AudioFeatures::none);

  const auto& txt = std::get<fg::TextPreprocessing>(c.input("text")->spec);
  CHECK(txt.standardize == fg::TextStandardize::lower_and_strip_punctuation);
  CHECK(txt.split == fg::TextSplit::whitespace);
  CHECK(txt.max_tokens == 1000);
  REQUIRE(txt.output_sequence_length.has_value());
  CHECK(*txt.output_sequence_length == 20);
  CHECK(txt.vocabulary_file.empty());

  const auto& cat = std::get<fg::CategoryPreprocessing>(c.output("classifier")->spec);
  CHECK(cat.classes.empty());
  CHECK(c.input("classifier") == nullptr);
  CHECK(c.output("image") == nullptr);

  CHECK(fg::preprocessed_shape(c.input("image")->spec) == fg::Dims{28, 28, 1});
  CHECK(fg::preprocessed_shape(c.input("audio")->spec) == fg::Dims{16000, 1});
  CHECK(fg::preprocessed_shape(c.input("text")->spec) == fg::Dims{20});
}

TEST_CASE("preprocessing config: defaults, other forms, and a graph without any") {
  auto c =
      parse(graph("  x: {shape: [7, 13, 3], preprocessing: {type: image, height: 7, width: 13}}"));
  const auto& img = std::get<fg::ImagePreprocessing>(c.fields.at(0).spec);
  CHECK(img.channels == 3);
  CHECK(img.rescale == 1.0);

  c = parse(graph(kImage + "{type: image, height: 28, width: 28, channels: 1, resize: area, "
                           "crop_to_aspect_ratio: true, rescale: 2, offset: -1, mean: [0.5], "
                           "std: [0.25]}}"));
  const auto& full = std::get<fg::ImagePreprocessing>(c.fields.at(0).spec);
  CHECK(full.resize == fg::ResizeMethod::area);
  CHECK(full.crop_to_aspect_ratio);
  CHECK(full.offset == -1.0);
  CHECK(full.mean == std::vector<double>{0.5});
  CHECK(full.std == std::vector<double>{0.25});

  c = parse(graph(audio("")));  // every audio default, length from the file
  const auto& snd = std::get<fg::AudioPreprocessing>(c.fields.at(0).spec);
  CHECK(snd.sample_rate == 16000);
  CHECK_FALSE(snd.max_length.has_value());
  CHECK(fg::preprocessed_shape(snd) == fg::Dims{fg::kDynamic, 1});

  // not mono: the channel count comes from the files, any declared count fits
  c =
      parse(graph("  x: {shape: [441, 2], preprocessing: {type: audio, sample_rate: 44100, "
                  "mono: false, max_length: 441, normalize: peak}}"));
  const auto& stereo = std::get<fg::AudioPreprocessing>(c.fields.at(0).spec);
  CHECK_FALSE(stereo.mono);
  CHECK(stereo.normalize == fg::AudioNormalize::peak);

  c = parse(graph(text(", standardize: null, split: character, max_tokens: null")));
  const auto& txt = std::get<fg::TextPreprocessing>(c.fields.at(0).spec);
  CHECK(txt.standardize == fg::TextStandardize::none);
  CHECK(txt.split == fg::TextSplit::character);
  CHECK(txt.max_tokens == 0);
  CHECK_FALSE(txt.output_sequence_length.has_value());

  c = parse(graph(text(", standardize: strip_punctuation, max_tokens: 0")));
  CHECK(std::get<fg::TextPreprocessing>(c.fields.at(0).spec).standardize ==
        fg::TextStandardize::strip_punctuation);

  // no preprocessing anywhere: an empty config; the list form keeps one nullopt per output
  const auto def = fg::load_graph_string(graph("  x: {shape: [3]}", "outputs: [out, x]"), "p");
  REQUIRE(def->output_preprocessing.size() == 2);
  CHECK_FALSE(def->output_preprocessing[0].has_value());
  CHECK_FALSE(def->output_preprocessing[1].has_value());
  CHECK(fg::parse_preprocessing(*def).empty());
  const auto one = fg::load_graph_string(graph("  x: {shape: [3]}", "outputs: out"), "p");
  CHECK(one->output_preprocessing.size() == 1);
}

TEST_CASE("preprocessing config: outputs as a mapping") {
  auto def = fg::load_graph_string(graph("  x: {shape: [3]}", "outputs: {out: {}, x: null}"), "p");
  CHECK(def->outputs == std::vector<std::string>{"out", "x"});
  REQUIRE(def->output_preprocessing.size() == 2);
  CHECK_FALSE(def->output_preprocessing[0].has_value());
  CHECK_FALSE(def->output_preprocessing[1].has_value());
  CHECK(def->output_locs[1].column == column_of("outputs: {out: {}, x: null}", "x: null"));

  auto c = parse(graph("  x: {shape: [3]}",
                       "outputs: {out: {preprocessing: {type: category, classes: [b, a, '3']}}}"));
  REQUIRE(c.fields.size() == 1);
  CHECK(c.output("out") != nullptr);
  CHECK(std::get<fg::CategoryPreprocessing>(c.output("out")->spec).classes ==
        std::vector<std::string>{"b", "a", "3"});
  CHECK(c.fields[0].loc.line == 6);

  // a misspelt key in an output's mapping
  const std::string line = "outputs: {out: {preprocesing: {type: category}}}";
  Failure f = failure(graph("  x: {shape: [3]}", line));
  CHECK(f.line == 6);
  CHECK(f.column == column_of(line, "preprocesing"));
  CHECK(f.message.find("unknown key 'preprocesing' in output 'out'") != std::string::npos);
  CHECK(f.hint == "did you mean 'preprocessing'?");

  const std::string scalar = "outputs: {out: category}";
  f = failure(graph("  x: {shape: [3]}", scalar));
  CHECK(f.line == 6);
  CHECK(f.column == column_of(scalar, "category"));
  CHECK(f.message.find("output 'out' must be a mapping, got 'category'") != std::string::npos);

  f = failure(graph("  x: {shape: [3]}", "outputs: {}"));
  CHECK(f.message.find("`outputs` must be a non-empty list") != std::string::npos);
  CHECK(f.hint.find("{preprocessing: {type: category}}") != std::string::npos);
}

TEST_CASE("preprocessing config: the mapping and its type") {
  CHECK_INPUT_FAILS(kImage + "image}", "image}",
                    "the preprocessing of input 'x' must be a mapping, got 'image'",
                    "preprocessing: {type: image");
  CHECK_INPUT_FAILS(kImage + "{height: 28}}", "{height",
                    "the preprocessing of input 'x' needs a 'type'", "`type: image`");
  CHECK_INPUT_FAILS(kImage + "{type: imag, height: 28}}", "imag,",
                    "unknown preprocessing type 'imag'", "did you mean 'image'?");
  CHECK_INPUT_FAILS(kImage + "{type: 3d}}", "3d", "unknown preprocessing type '3d'", "'image'");
  CHECK_INPUT_FAILS(image(", heigth: 28"), "28}}", "unknown key 'heigth'",
                    "did you mean 'height'?");
  CHECK_INPUT_FAILS(image(", sample_rate: 16000"), "16000",
                    "unknown key 'sample_rate' in the preprocessing of input 'x' (type image)",
                    "'sample_rate' belongs to type audio");
  CHECK_INPUT_FAILS(image(", zzz: 1"), "1}", "unknown key 'zzz'", "known keys: 'type', 'height'");
  CHECK_INPUT_FAILS(kImage + "{type: image, height: 28, width: 28, height: 29}}", "29",
                    "duplicate key 'height'", "");
  CHECK_INPUT_FAILS(kImage + "{type: category}}", "category",
                    "input 'x' has category preprocessing, which is for outputs",
                    "under the output in `outputs:`");
  CHECK_INPUT_FAILS("  x: {shape: [3], preprocesing: {type: image}}", "preprocesing",
                    "unknown key 'preprocesing' in input 'x'", "did you mean 'preprocessing'?");

  const std::string line = "outputs: {out: {preprocessing: {type: text}}}";
  Failure f = failure(graph("  x: {shape: [3]}", line));
  CHECK(f.line == 6);
  CHECK(f.column == column_of(line, "text"));
  CHECK(f.message.find("output 'out' has text preprocessing; outputs take only `type: category`") !=
        std::string::npos);
}

TEST_CASE("preprocessing config: image keys and ranges") {
  CHECK_INPUT_FAILS(kImage + "{type: image, width: 28}}", "{type",
                    "the preprocessing of input 'x' needs 'height'", "add `height: <pixels>`");
  CHECK_INPUT_FAILS(kImage + "{type: image, height: 28}}", "{type", "needs 'width'", "width: 28");
  CHECK_INPUT_FAILS(kImage + "{type: image, height: 0, width: 28, channels: 1}}", "0,",
                    "'height' in the preprocessing of input 'x' must be in [1, 65535], got 0",
                    "pixels");
  CHECK_INPUT_FAILS(kImage + "{type: image, height: 28, width: 65536, channels: 1}}", "65536",
                    "'width' in the preprocessing of input 'x' must be in [1, 65535], got 65536",
                    "pixels");
  CHECK_INPUT_FAILS(kImage + "{type: image, height: 2.5, width: 28}}", "2.5",
                    "'height' in the preprocessing of input 'x' must be an integer, got '2.5'", "");
  CHECK_INPUT_FAILS(kImage + "{type: image, height: 28, width: 28, channels: 2}}", "2}",
                    "must be 1, 3 or 4, got 2", "1 is greyscale");
  CHECK_INPUT_FAILS(image(", resize: bilinaer"), "bilinaer",
                    "'resize' in the preprocessing of input 'x' must be one of 'bilinear', "
                    "'nearest', 'area', got 'bilinaer'",
                    "did you mean 'bilinear'?");
  CHECK_INPUT_FAILS(image(", crop_to_aspect_ratio: maybe"), "maybe",
                    "must be true or false, got 'maybe'", "");
  CHECK_INPUT_FAILS(image(", rescale: .inf"), ".inf",
                    "'rescale' in the preprocessing of input 'x' must be a finite number", "");
  CHECK_INPUT_FAILS(image(", rescale: '0.5'"), "'0.5'", "must be a finite number, got the string",
                    "");
  CHECK_INPUT_FAILS(image(", mean: [0.5, 0.5, 0.5]"), "[0.5, 0.5, 0.5]",
                    "'mean' in the preprocessing of input 'x' must be a list of 1 number(s), one "
                    "per channel, got a list of 3 item(s)",
                    "channels is 1: write e.g. mean: [0.5]");
  CHECK_INPUT_FAILS(image(", std: 0.5"), "0.5}", "must be a list of 1 number(s)", "std: [0.5]");
  CHECK_INPUT_FAILS(image(", std: [0]"), "0]",
                    "an entry of 'std' in the preprocessing of input 'x' must be > 0, got 0",
                    "divided");
  CHECK_INPUT_FAILS(image(", mean: [x]"), "x]", "an entry of 'mean'", "");
}

TEST_CASE("preprocessing config: an image that does not fit its input") {
  CHECK_INPUT_FAILS(
      "  x: {shape: [28, 28, 3], preprocessing: {type: image, height: 28, width: "
      "28, channels: 1}}",
      "{type", "input 'x' is [28, 28, 3] but its preprocessing makes [28, 28, 1]",
      "declare `shape: [28, 28, 1]`, or set height: 28, width: 28, channels: 3 in "
      "the preprocessing");
  CHECK_INPUT_FAILS("  x: {shape: [13, 7, 3], preprocessing: {type: image, height: 7, width: 13}}",
                    "{type", "input 'x' is [13, 7, 3] but its preprocessing makes [7, 13, 3]",
                    "height: 13, width: 7");
  CHECK_INPUT_FAILS(
      "  x: {shape: [784], preprocessing: {type: image, height: 28, width: 28, "
      "channels: 1}}",
      "{type", "input 'x' is [784] but its preprocessing makes [28, 28, 1]",
      "declare `shape: [28, 28, 1]`");
  CHECK_INPUT_FAILS(
      "  x: {shape: [28, 28, 1], dtype: int32, preprocessing: {type: image, height: "
      "28, width: 28, channels: 1}}",
      "{type", "input 'x' is int32 but image preprocessing makes float32",
      "declare `dtype: float32` for input 'x'");
  // a declared null accepts the fixed size the preprocessing makes
  CHECK(parse(graph("  x: {shape: [null, null, 1], preprocessing: {type: image, height: 5, width: "
                    "9, channels: 1}}"))
            .fields.size() == 1);
}

TEST_CASE("preprocessing config: audio keys, ranges and fit") {
  CHECK_INPUT_FAILS(audio(", sample_rate: 999"), "999",
                    "'sample_rate' in the preprocessing of input 'x' must be in [1000, 384000], "
                    "got 999",
                    "samples per second");
  CHECK_INPUT_FAILS(audio(", sample_rate: 384001"), "384001", "must be in [1000, 384000]", "");
  CHECK_INPUT_FAILS(audio(", max_length: 0"), "0}",
                    "'max_length' in the preprocessing of input "
                    "'x' must be >= 1, got 0",
                    "null keeps each file's length");
  CHECK_INPUT_FAILS(audio(", mono: 1"), "1}",
                    "'mono' in the preprocessing of input 'x' must be "
                    "true or false, got '1'",
                    "");
  CHECK_INPUT_FAILS(audio(", normalize: rms"), "rms", "must be one of 'none', 'peak', got 'rms'",
                    "");
  CHECK_INPUT_FAILS(audio(", features: mfcc"), "mfcc",
                    "must be one of 'none', 'stft', 'mel', got 'mfcc'", "");
  CHECK_INPUT_FAILS(audio(", n_mels: 40"), "40",
                    "'n_mels' in the preprocessing of input 'x' is a spectrogram setting, but "
                    "there is no 'features'",
                    "add `features: mel`");
  CHECK_INPUT_FAILS(audio(", frame_step: 10"), "10", "is a spectrogram setting",
                    "`features: stft` or `features: mel`");
  CHECK_INPUT_FAILS(audio(", features: stft, min_freq: 30"), "30",
                    "'min_freq' in the preprocessing of input 'x' is a mel setting, but features "
                    "is stft",
                    "`features: mel`");
  CHECK_INPUT_FAILS(audio(", features: stft, frame_length: 0"), "0}",
                    "'frame_length' in the preprocessing of input 'x' must be >= 1, got 0", "");
  CHECK_INPUT_FAILS(audio(", features: stft, frame_length: 400, fft_length: 256"), "256",
                    "fft_length (256) must be >= frame_length (400)", "set fft_length: 512");
  CHECK_INPUT_FAILS(audio(", features: stft, frame_length: 1025"), "1025",
                    "fft_length (512) must be >= frame_length (1025)", "set fft_length: 2048");
  CHECK_INPUT_FAILS(audio(", features: stft, window: hanning"), "hanning",
                    "must be one of 'hann', 'hamming', 'none', got 'hanning'", "");
  CHECK_INPUT_FAILS(audio(", features: mel, n_mels: 0"), "0}", "'n_mels'", "mel bands");
  CHECK_INPUT_FAILS(audio(", features: mel, max_freq: 8001"), "8001",
                    "'max_freq' in the preprocessing of input 'x' must be in (0, sample_rate / 2 "
                    "= 8000], got 8001",
                    "0 means sample_rate / 2");
  CHECK_INPUT_FAILS(audio(", features: mel, min_freq: 500, max_freq: 400"), "400",
                    "min_freq (500) must be below max_freq (400)", "");
  CHECK_INPUT_FAILS(audio(", sample_rate: 8000, features: mel, min_freq: 4000"), "4000",
                    "min_freq (4000) must be below max_freq (4000)",
                    "max_freq defaults to sample_rate / 2 = 4000");
  CHECK_INPUT_FAILS(audio(", features: mel, min_freq: -1"), "-1", "must be >= 0, got -1", "");
  CHECK_INPUT_FAILS(audio(", mono: false, features: stft"), "false",
                    "spectrogram features need mono audio", "`mono: true`");

  CHECK_INPUT_FAILS(audio(", features: stft, fft_length: 513"), "513",
                    "'fft_length' in the preprocessing of input 'x' must be even, got 513",
                    "fft_length: 514");
  CHECK_INPUT_FAILS(audio(", features: stft, fft_length: 2097152"), "2097152",
                    "must be in [2, 1048576], got 2097152", "even");
  CHECK_INPUT_FAILS(audio(", features: mel, fft_length: 1"), "1}", "must be in [2, 1048576]", "");
  CHECK_INPUT_FAILS(audio(", max_length: 1000000000000"), "{type",
                    "a sample of input 'x' of shape (1000000000000, 1) float32 would need more "
                    "than 1099511627776 bytes",
                    "lower max_length");
  CHECK_INPUT_FAILS(text(", output_sequence_length: 300000000000"), "{type",
                    "a sample of input 'x' of shape (300000000000,) int32 would need more", "");

  // with features: [frames or null, bins]; bins = fft_length / 2 + 1 (stft) or n_mels (mel)
  // (framework/preprocessing.hpp)
  CHECK(parse(graph("  x: {shape: [null, 257], preprocessing: {type: audio, features: stft}}"))
            .fields.size() == 1);
  CHECK(parse(graph("  x: {shape: [null, 40], preprocessing: {type: audio, features: mel, "
                    "n_mels: 40, min_freq: 0, max_freq: 8000, window: hamming, log: false}}"))
            .fields.size() == 1);
  CHECK_INPUT_FAILS("  x: {shape: [null, 64], preprocessing: {type: audio, features: stft}}",
                    "{type", "input 'x' is [null, 64] but its preprocessing makes [null, 257]",
                    "declare `shape: [null, 257]`");
  CHECK_INPUT_FAILS("  x: {shape: [16000, 1], preprocessing: {type: audio}}", "{type",
                    "input 'x' is [16000, 1] but its preprocessing makes [null, 1]",
                    "declare `shape: [null, 1]`, or set max_length: 16000");
  CHECK_INPUT_FAILS("  x: {shape: [null, 2], preprocessing: {type: audio, max_length: 8000}}",
                    "{type", "input 'x' is [null, 2] but its preprocessing makes [8000, 1]",
                    "mono: true for 1 channel");
  CHECK_INPUT_FAILS("  x: {shape: [null], preprocessing: {type: audio}}", "{type",
                    "input 'x' is [null] but its preprocessing makes [null, 1]", "");
  CHECK_INPUT_FAILS("  x: {shape: [null, 1], dtype: int32, preprocessing: {type: audio}}", "{type",
                    "input 'x' is int32 but audio preprocessing makes float32", "dtype: float32");
}

TEST_CASE("preprocessing config: text keys, ranges, fit and the vocabulary path") {
  CHECK_INPUT_FAILS(text(", standardize: lowercase"), "lowercase",
                    "'standardize' in the preprocessing of input 'x' must be one of "
                    "'lower_and_strip_punctuation', 'lower', 'strip_punctuation', 'none', got "
                    "'lowercase'",
                    "did you mean 'lower'?");
  CHECK_INPUT_FAILS(text(", split: words"), "words", "must be one of 'whitespace', 'character'",
                    "");
  CHECK_INPUT_FAILS(text(", max_tokens: 2"), "2}",
                    "'max_tokens' in the preprocessing of input 'x' must be >= 3 (or 0 / null for "
                    "no limit), got 2",
                    "padding (id 0) and out-of-vocabulary (id 1)");
  CHECK_INPUT_FAILS(text(", max_tokens: -5"), "-5", "must be >= 3", "");
  CHECK_INPUT_FAILS(text(", output_sequence_length: 0"), "0}",
                    "'output_sequence_length' in the preprocessing of input 'x' must be >= 1, "
                    "got 0",
                    "null keeps every token");
  CHECK_INPUT_FAILS(text(", vocabulary: [a, b]"), "[a, b]",
                    "'vocabulary' in the preprocessing of input 'x' must be a file name, got a "
                    "list of 2 item(s)",
                    "one token per line");
  CHECK_INPUT_FAILS(text(", sample_rate: 1"), "1}", "unknown key 'sample_rate'",
                    "belongs to type audio");
  CHECK_INPUT_FAILS("  x: {shape: [20], dtype: int32, preprocessing: {type: text}}", "{type",
                    "input 'x' is [20] but its preprocessing makes [null]",
                    "declare `shape: [null]`, or set output_sequence_length: 20");
  CHECK_INPUT_FAILS("  x: {shape: [null], preprocessing: {type: text}}", "{type",
                    "input 'x' is float32 but text preprocessing makes int32",
                    "declare `dtype: int32`");
  CHECK_INPUT_FAILS("  x: {shape: [null, 4], dtype: int32, preprocessing: {type: text}}", "{type",
                    "input 'x' is [null, 4] but its preprocessing makes [null]", "");

  // relative to the graph file's directory; absolute paths as written
  auto c = parse(graph(text(", vocabulary: words.txt")), "graphs/sub/g.yaml");
  CHECK(std::get<fg::TextPreprocessing>(c.fields.at(0).spec).vocabulary_file ==
        "graphs/sub/words.txt");
  c = parse(graph(text(", vocabulary: /data/words.txt")), "graphs/g.yaml");
  CHECK(std::get<fg::TextPreprocessing>(c.fields.at(0).spec).vocabulary_file == "/data/words.txt");
  c = parse(graph(text(", vocabulary: words.txt")), "g.yaml");
  CHECK(std::get<fg::TextPreprocessing>(c.fields.at(0).spec).vocabulary_file == "words.txt");
}

TEST_CASE("preprocessing config: category classes") {
  const auto fails = [](const std::string& classes, const std::string& needle,
                        const std::string& text_, const std::string& hint) {
    const std::string line = "outputs: {out: {preprocessing: {type: category" + classes + "}}}";
    const Failure f = failure(graph("  x: {shape: [3]}", line));
    INFO(f.message);
    CHECK(f.line == 6);
    CHECK(f.column == column_of(line, needle));
    CHECK(f.message.find(text_) != std::string::npos);
    CHECK(f.hint.find(hint) != std::string::npos);
  };
  fails(", classes: []", "[]",
        "'classes' in the preprocessing of output 'out' must be a non-empty list of class names, "
        "got a list of 0 item(s)",
        "leave `classes` out");
  fails(", classes: cat", "cat}", "must be a non-empty list of class names, got 'cat'", "");
  fails(", classes: [cat, dog, cat]", "cat]",
        "class 'cat' is listed twice in the preprocessing of output 'out'", "each class name once");
  fails(", classes: [cat, [dog]]", "[dog]", "an entry of 'classes'", "");
  fails(", classes: [cat], height: 3", "3}", "unknown key 'height'", "belongs to type image");
  fails(", clases: [a]", "[a]", "unknown key 'clases'", "did you mean 'classes'?");
}

TEST_CASE("preprocessing config: compiling the graph (graph-runner validate) checks it") {
  const std::string ok = R"(name: v
inputs:
  x: {shape: [4, 4, 1], preprocessing: {type: image, height: 4, width: 4, channels: 1}}
nodes:
  - {name: flat, op: flatten, input: x}
  - {name: probs, op: dense, input: flat, units: 3, activation: softmax}
outputs:
  probs: {preprocessing: {type: category, classes: [a, b, c]}}
)";
  CHECK(fg::test::compile_error(ok) == "");
  std::string bad = ok;
  bad.replace(bad.find("channels: 1"), 11, "channels: 3");
  const std::string message = fg::test::compile_error(bad);
  CHECK(message.find("test.yaml:3:") != std::string::npos);
  CHECK(message.find("input 'x' is [4, 4, 1] but its preprocessing makes [4, 4, 3]") !=
        std::string::npos);
}
