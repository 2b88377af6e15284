// Parsing and validation of every `preprocessing:` mapping of a graph (inputs and outputs), in
// the style of the `training:` section (framework/training_config.cpp): each key checked with
// did-you-mean, each value's type and range, errors at the value's file:line:column with a hint.
// Keys and defaults follow Keras's preprocessing layers (Resizing, Rescaling, Normalization,
// TextVectorization, STFTSpectrogram, MelSpectrogram); docs/data.md lists them all.
#include "framework/preprocessing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include "framework/config_value.hpp"
#include "framework/graph_def.hpp"

namespace fg {

namespace {

const std::vector<std::string> kTypes = {"image", "audio", "text", "category"};
constexpr int64_t kMaxFftLength = int64_t(1) << 20;  // as engine/data/spectrogram.cpp

// The keys each type takes (`type` included), in the order docs/data.md lists them.
const std::vector<std::string>& keys_of(const std::string& type) {
  static const std::vector<std::string> image = {
      "type",    "height", "width", "channels", "resize", "crop_to_aspect_ratio",
      "rescale", "offset", "mean",  "std"};
  static const std::vector<std::string> audio = {
      "type",       "sample_rate", "mono",   "max_length", "normalize", "features", "frame_length",
      "frame_step", "fft_length",  "window", "n_mels",     "min_freq",  "max_freq", "log"};
  static const std::vector<std::string> text = {
      "type", "standardize", "split", "max_tokens", "output_sequence_length", "vocabulary"};
  static const std::vector<std::string> category = {"type", "classes"};
  return type == "image" ? image : type == "audio" ? audio : type == "text" ? text : category;
}

// The type among the others that takes `key`, or "".
std::string type_taking(const std::string& key) {
  for (const auto& t : kTypes) {
    const auto& keys = keys_of(t);
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return t;
  }
  return "";
}

// One `preprocessing:` mapping: keys checked against the type's (did-you-mean, or the type the
// key belongs to), typed getters for optional values (absent or null: the fallback) with the
// range checked at the value.
class KeyReader {
 public:
  KeyReader(const Value& map, std::string where) : map_(map), where_(std::move(where)) {
    if (map.kind != Value::Kind::map)
      throw error_at(map, fmt::format("{} must be a mapping, got {}", where_, map.describe()))
          .hint("e.g. preprocessing: {type: image, height: 28, width: 28, channels: 1}");
    std::set<std::string> seen;
    for (const auto& [key, value] : map.entries)
      if (!seen.insert(key).second)
        throw error_at(at(value), fmt::format("duplicate key '{}' in {}", key, where_));
  }

  // The `type` value, then every key checked against that type's.
  std::string type() const {
    const Value* v = find("type");
    if (!v)
      throw error_at(map_, fmt::format("{} needs a 'type'", where_))
          .hint(
              "add `type: image`, `type: audio`, `type: text` (inputs) or `type: category` "
              "(outputs)");
    const std::string t = to_name(*v, what("type"));
    if (std::find(kTypes.begin(), kTypes.end(), t) == kTypes.end())
      throw error_at(*v, fmt::format("unknown preprocessing type '{}' in {}", t, where_))
          .hint(did_you_mean(t, kTypes));
    check_keys(t);
    return t;
  }

  const Value* find(const std::string& key) const {
    for (const auto& [k, v] : map_.entries)
      if (k == key) return v.kind == Value::Kind::null ? nullptr : &v;
    return nullptr;
  }
  bool written(const std::string& key) const {  // present, even as null
    for (const auto& e : map_.entries)
      if (e.first == key) return true;
    return false;
  }
  const Value& require(const std::string& key, const std::string& hint) const {
    if (const Value* v = find(key)) return *v;
    throw error_at(map_, fmt::format("{} needs '{}'", where_, key)).hint(hint);
  }
  std::string what(const std::string& key) const { return fmt::format("'{}' in {}", key, where_); }
  const Value& at(const Value& v) const { return v.loc.known() ? v : map_; }

  // An integer in [lo, hi].
  int64_t integer(const Value& v, const std::string& key, int64_t lo, int64_t hi,
                  const std::string& hint) const {
    const int64_t x = to_integer(v, what(key));
    if (x >= lo && x <= hi) return x;
    const std::string range =
        hi == INT64_MAX ? fmt::format(">= {}", lo) : fmt::format("in [{}, {}]", lo, hi);
    throw error_at(v, fmt::format("{} must be {}, got {}", what(key), range, x)).hint(hint);
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi,
                  const std::string& hint) const {
    const Value* v = find(key);
    return v ? integer(*v, key, lo, hi, hint) : fallback;
  }
  double number(const std::string& key, double fallback) const {
    const Value* v = find(key);
    return v ? to_number(*v, what(key)) : fallback;
  }
  bool flag(const std::string& key, bool fallback) const {
    const Value* v = find(key);
    return v ? to_bool(*v, what(key)) : fallback;
  }
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& choices) const {
    const Value* v = find(key);
    if (!v) return fallback;
    const std::string s = to_name(*v, what(key));
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
    throw error_at(
        *v, fmt::format("{} must be one of {}, got '{}'", what(key), quoted_list(choices), s))
        .hint(did_you_mean(s, choices));
  }
  const std::string& where() const { return where_; }
  const Value& value() const { return map_; }

 private:
  void check_keys(const std::string& type) const {
    const auto& known = keys_of(type);
    for (const auto& [key, value] : map_.entries) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      Error e =
          error_at(at(value), fmt::format("unknown key '{}' in {} (type {})", key, where_, type));
      const std::string best = closest_match(key, known);
      const std::string other = type_taking(key);
      if (!best.empty())
        e.hint(fmt::format("did you mean '{}'?", best));
      else if (!other.empty())
        e.hint(fmt::format("'{}' belongs to type {}; type {} takes {}", key, other, type,
                           quoted_list(known)));
      else
        e.hint("known keys: " + quoted_list(known));
      throw e;
    }
  }

  const Value& map_;
  std::string where_;
};

// `mean` / `std`: a list of one number per channel.
std::vector<double> channel_list(const KeyReader& r, const std::string& key, int64_t channels,
                                 bool positive) {
  const Value* v = r.find(key);
  if (!v) return {};
  if (v->kind != Value::Kind::list || static_cast<int64_t>(v->items.size()) != channels)
    throw error_at(*v, fmt::format("{} must be a list of {} number(s), one per channel, got {}",
                                   r.what(key), channels, v->describe()))
        .hint(fmt::format("channels is {}: write e.g. {}: [{}]", channels, key,
                          channels == 1   ? "0.5"
                          : channels == 3 ? "0.5, 0.5, 0.5"
                                          : "0.5, 0.5, 0.5, 0.5"));
  std::vector<double> out;
  for (const auto& item : v->items) {
    out.push_back(to_number(item, fmt::format("an entry of {}", r.what(key))));
    if (positive && !(out.back() > 0))
      throw error_at(item,
                     fmt::format("an entry of {} must be > 0, got {}", r.what(key), item.scalar))
          .hint("each value is divided by its channel's std");
  }
  return out;
}

ImagePreprocessing parse_image(const KeyReader& r) {
  ImagePreprocessing p;
  const char* size_hint = "the size images are resized to, in pixels (1 to 65535)";
  p.height = r.integer(r.require("height", "add `height: <pixels>`, e.g. height: 28"), "height", 1,
                       65535, size_hint);
  p.width = r.integer(r.require("width", "add `width: <pixels>`, e.g. width: 28"), "width", 1,
                      65535, size_hint);
  if (const Value* c = r.find("channels")) {
    p.channels = to_integer(*c, r.what("channels"));
    if (p.channels != 1 && p.channels != 3 && p.channels != 4)
      throw error_at(*c,
                     fmt::format("{} must be 1, 3 or 4, got {}", r.what("channels"), p.channels))
          .hint("1 is greyscale, 3 RGB, 4 RGBA; files are converted to it");
  }
  const std::string resize = r.choice("resize", "bilinear", {"bilinear", "nearest", "area"});
  p.resize = resize == "nearest" ? ResizeMethod::nearest
             : resize == "area"  ? ResizeMethod::area
                                 : ResizeMethod::bilinear;
  p.crop_to_aspect_ratio = r.flag("crop_to_aspect_ratio", false);
  p.rescale = r.number("rescale", 1.0);
  p.offset = r.number("offset", 0.0);
  p.mean = channel_list(r, "mean", p.channels, false);
  p.std = channel_list(r, "std", p.channels, true);
  return p;
}

// The spectrogram keys: only with `features`, the mel ones only with `features: mel`.
void check_feature_keys(const KeyReader& r, AudioFeatures features) {
  for (const char* key : {"frame_length", "frame_step", "fft_length", "window", "log", "n_mels",
                          "min_freq", "max_freq"}) {
    const Value* v = r.find(key);
    if (!v) continue;
    const bool mel_only = std::string(key) == "n_mels" || std::string(key) == "min_freq" ||
                          std::string(key) == "max_freq";
    if (features == AudioFeatures::none)
      throw error_at(
          *v, fmt::format("{} is a spectrogram setting, but there is no 'features'", r.what(key)))
          .hint(mel_only ? "add `features: mel`, or remove it"
                         : "add `features: stft` or `features: mel`, or remove it");
    if (mel_only && features != AudioFeatures::mel)
      throw error_at(*v, fmt::format("{} is a mel setting, but features is stft", r.what(key)))
          .hint("use `features: mel`, or remove it");
  }
}

void parse_spectrogram(const KeyReader& r, AudioPreprocessing& p) {
  p.frame_length = r.integer("frame_length", 400, 1, INT64_MAX, "samples per frame (window)");
  p.frame_step = r.integer("frame_step", 160, 1, INT64_MAX, "samples between frame starts");
  p.fft_length = r.integer("fft_length", 512, 2, kMaxFftLength,
                           "the FFT size: an even number, >= frame_length");
  if (p.fft_length % 2 != 0)
    throw error_at(*r.find("fft_length"),
                   fmt::format("{} must be even, got {}", r.what("fft_length"), p.fft_length))
        .hint(fmt::format("e.g. fft_length: {}", p.fft_length + 1));
  if (p.fft_length < p.frame_length) {
    const Value* v = r.find("fft_length") ? r.find("fft_length") : r.find("frame_length");
    throw error_at(*v, fmt::format("fft_length ({}) must be >= frame_length ({}) in {}",
                                   p.fft_length, p.frame_length, r.where()))
        .hint(fmt::format("set fft_length: {} (a power of two at least frame_length is usual)",
                          int64_t(1) << static_cast<int>(std::ceil(std::log2(p.frame_length)))));
  }
  p.window = r.choice("window", "hann", {"hann", "hamming", "none"});
  p.log = r.flag("log", true);
  if (p.features != AudioFeatures::mel) return;
  p.n_mels = r.integer("n_mels", 64, 1, INT64_MAX, "the number of mel bands");
  p.min_freq = r.number("min_freq", 20.0);
  p.max_freq = r.number("max_freq", 0.0);
  const double nyquist = p.sample_rate / 2.0;
  // max_freq 0: int(sample_rate / 2), as the mel filter bank (engine/data/spectrogram.cpp)
  const double top = p.max_freq == 0.0 ? static_cast<double>(p.sample_rate / 2) : p.max_freq;
  const Value* where = r.find("max_freq") ? r.find("max_freq") : r.find("min_freq");
  if (p.min_freq < 0)
    throw error_at(*r.find("min_freq"),
                   fmt::format("{} must be >= 0, got {}", r.what("min_freq"), p.min_freq));
  if (top > nyquist || top < 0)
    throw error_at(*where, fmt::format("{} must be in (0, sample_rate / 2 = {}], got {}",
                                       r.what("max_freq"), nyquist, p.max_freq))
        .hint(
            "frequencies above half the sample rate are not in the signal; 0 means "
            "sample_rate / 2");
  if (!(p.min_freq < top))
    throw error_at(
        where ? *where : r.value(),
        fmt::format("min_freq ({}) must be below max_freq ({}) in {}", p.min_freq, top, r.where()))
        .hint(fmt::format("max_freq defaults to sample_rate / 2 = {}", p.sample_rate / 2));
}

AudioPreprocessing parse_audio(const KeyReader& r) {
  AudioPreprocessing p;
  p.sample_rate = r.integer("sample_rate", 16000, 1000, 384000,
                            "samples per second after resampling, e.g. 16000");
  p.mono = r.flag("mono", true);
  if (const Value* v = r.find("max_length"))
    p.max_length = r.integer(*v, "max_length", 1, INT64_MAX,
                             "samples kept from the start; null keeps each file's length");
  const std::string normalize = r.choice("normalize", "none", {"none", "peak"});
  p.normalize = normalize == "peak" ? AudioNormalize::peak : AudioNormalize::none;
  const std::string features = r.choice("features", "none", {"none", "stft", "mel"});
  p.features = features == "stft"  ? AudioFeatures::stft
               : features == "mel" ? AudioFeatures::mel
                                   : AudioFeatures::none;
  check_feature_keys(r, p.features);
  if (p.features == AudioFeatures::none) return p;
  if (!p.mono)
    throw error_at(*r.find("mono"),
                   fmt::format("{}: spectrogram features need mono audio", r.where()))
        .hint("set `mono: true` (the channels are averaged), or remove `features`");
  parse_spectrogram(r, p);
  if (p.max_length && spectrogram_frames(p, *p.max_length) < 1)
    throw error_at(*r.find("max_length"),
                   fmt::format("max_length {} is shorter than one frame (frame_length {}) in {}",
                               *p.max_length, p.frame_length, r.where()))
        .hint("raise max_length or lower frame_length");
  return p;
}

TextPreprocessing parse_text(const KeyReader& r, const std::string& graph_file) {
  TextPreprocessing p;
  // Keras: standardize=None means no standardization; `none` is the same here.
  if (r.written("standardize") && !r.find("standardize")) {
    p.standardize = TextStandardize::none;
  } else {
    const std::string s =
        r.choice("standardize", "lower_and_strip_punctuation",
                 {"lower_and_strip_punctuation", "lower", "strip_punctuation", "none"});
    p.standardize = s == "lower"               ? TextStandardize::lower
                    : s == "strip_punctuation" ? TextStandardize::strip_punctuation
                    : s == "none"              ? TextStandardize::none
                                               : TextStandardize::lower_and_strip_punctuation;
  }
  const std::string split = r.choice("split", "whitespace", {"whitespace", "character"});
  p.split = split == "character" ? TextSplit::character : TextSplit::whitespace;
  if (const Value* v = r.find("max_tokens")) {
    p.max_tokens = to_integer(*v, r.what("max_tokens"));
    if (p.max_tokens != 0 && p.max_tokens < 3)
      throw error_at(*v, fmt::format("{} must be >= 3 (or 0 / null for no limit), got {}",
                                     r.what("max_tokens"), p.max_tokens))
          .hint(
              "the vocabulary size counts the padding (id 0) and out-of-vocabulary (id 1) "
              "entries too, as Keras's TextVectorization");
  }
  if (const Value* v = r.find("output_sequence_length"))
    p.output_sequence_length =
        r.integer(*v, "output_sequence_length", 1, INT64_MAX,
                  "tokens per sample (padded with 0 or truncated); null keeps every token");
  if (const Value* v = r.find("vocabulary")) {
    if (v->kind != Value::Kind::scalar || v->scalar.empty())
      throw type_error(*v, r.what("vocabulary"), "a file name")
          .hint("a text file with one token per line, relative to the graph file");
    const std::filesystem::path file(v->scalar);
    const std::filesystem::path dir = std::filesystem::path(graph_file).parent_path();
    p.vocabulary_file = file.is_absolute() || dir.empty() ? file.string() : (dir / file).string();
  }
  return p;
}

CategoryPreprocessing parse_category(const KeyReader& r) {
  CategoryPreprocessing p;
  const Value* v = r.find("classes");
  if (!v) return p;
  if (v->kind != Value::Kind::list || v->items.empty())
    throw type_error(*v, r.what("classes"), "a non-empty list of class names")
        .hint("e.g. classes: [cat, dog]; leave `classes` out to take them from the training data");
  for (const auto& item : v->items) {
    if (item.kind != Value::Kind::scalar || item.scalar.empty())
      throw type_error(item, fmt::format("an entry of {}", r.what("classes")), "a class name");
    if (std::find(p.classes.begin(), p.classes.end(), item.scalar) != p.classes.end())
      throw error_at(item, fmt::format("class '{}' is listed twice in {}", item.scalar, r.where()))
          .hint("each class name once, in class (id) order");
    p.classes.push_back(item.scalar);
  }
  return p;
}

PreprocessingSpec parse_spec(const KeyReader& r, const std::string& type,
                             const std::string& graph_file) {
  if (type == "image") return parse_image(r);
  if (type == "audio") return parse_audio(r);
  if (type == "text") return parse_text(r, graph_file);
  return parse_category(r);
}

std::string dim_text(Dim d) {
  return d == kDynamic ? std::string("null") : std::to_string(d);
}

// "[28, 28, null]" as the YAML writes shapes.
std::string yaml_shape(const Dims& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + dim_text(dims[i]);
  return out + "]";
}

// How to make the two sides agree: the shape to declare, or the keys that would give the
// declared one.
std::string fit_hint(const PreprocessingSpec& spec, const Dims& declared, const Dims& made) {
  std::string keys;
  if (std::holds_alternative<ImagePreprocessing>(spec) && declared.size() == 3)
    keys = fmt::format("height: {}, width: {}, channels: {}", dim_text(declared[0]),
                       dim_text(declared[1]), dim_text(declared[2]));
  else if (std::holds_alternative<TextPreprocessing>(spec) && declared.size() == 1)
    keys = fmt::format("output_sequence_length: {}", dim_text(declared[0]));
  else if (const auto* a = std::get_if<AudioPreprocessing>(&spec);
           a && a->features == AudioFeatures::none && declared.size() == 2)
    keys = fmt::format("max_length: {} (and mono: true for 1 channel)", dim_text(declared[0]));
  std::string hint = fmt::format("declare `shape: {}`", yaml_shape(made));
  if (!keys.empty()) hint += fmt::format(", or set {} in the preprocessing", keys);
  return hint;
}

// A declared dim fits a made one when equal or declared null; a length the data decides
// (made null) needs a declared null. Non-mono audio's channel count comes from the files, so any
// declared count fits (the pipeline checks each file against it).
bool dims_fit(const PreprocessingSpec& spec, const Dims& declared, const Dims& made) {
  if (declared.size() != made.size()) return false;
  const auto* audio = std::get_if<AudioPreprocessing>(&spec);
  const bool file_channels = audio && !audio->mono && audio->features == AudioFeatures::none;
  for (size_t i = 0; i < made.size(); ++i) {
    if (file_channels && i + 1 == made.size()) continue;
    if (declared[i] != kDynamic && declared[i] != made[i]) return false;
  }
  return true;
}

void check_fit(const InputDef& input, const FieldPreprocessing& field) {
  const bool text = std::holds_alternative<TextPreprocessing>(field.spec);
  const DType want = text ? DType::i32 : DType::f32;
  const char* type = text                                                     ? "text"
                     : std::holds_alternative<ImagePreprocessing>(field.spec) ? "image"
                                                                              : "audio";
  if (input.dtype != want)
    throw Error(fmt::format("input '{}' is {} but {} preprocessing makes {}", input.name,
                            dtype_name(input.dtype), type, dtype_name(want)))
        .at(field.loc)
        .hint(fmt::format("declare `dtype: {}` for input '{}'", dtype_name(want), input.name));
  const Dims made = preprocessed_shape(field.spec);
  try {  // a sample the size limit refuses (a huge max_length or output_sequence_length)
    check_tensor_size(made, want, fmt::format("a sample of input '{}'", input.name));
  } catch (Error& e) {
    throw e.at(field.loc).hint("lower max_length / output_sequence_length; see docs/limits.md");
  }
  if (!dims_fit(field.spec, input.shape, made))
    throw Error(fmt::format("input '{}' is {} but its preprocessing makes {}", input.name,
                            yaml_shape(input.shape), yaml_shape(made)))
        .at(field.loc)
        .hint(fit_hint(field.spec, input.shape, made));
}

FieldPreprocessing parse_field(const Value& v, const std::string& name, bool output,
                               const std::string& graph_file) {
  const KeyReader r(v,
                    fmt::format("the preprocessing of {} '{}'", output ? "output" : "input", name));
  const std::string type = r.type();
  const Value& type_value = *r.find("type");
  if (output && type != "category")
    throw error_at(type_value, fmt::format("output '{}' has {} preprocessing; outputs take only "
                                           "`type: category`",
                                           name, type))
        .hint("image, audio and text preprocessing belong to inputs, under `inputs:`");
  if (!output && type == "category")
    throw error_at(type_value, fmt::format("input '{}' has category preprocessing, which is "
                                           "for outputs (labels)",
                                           name))
        .hint(
            "put `preprocessing: {type: category}` under the output in `outputs:`; an input "
            "takes image, audio or text");
  FieldPreprocessing field;
  field.name = name;
  field.output = output;
  field.loc = v.loc;
  field.spec = parse_spec(r, type, graph_file);
  return field;
}

}  // namespace

const FieldPreprocessing* PreprocessingConfig::input(const std::string& name) const {
  for (const auto& f : fields)
    if (!f.output && f.name == name) return &f;
  return nullptr;
}

const FieldPreprocessing* PreprocessingConfig::output(const std::string& name) const {
  for (const auto& f : fields)
    if (f.output && f.name == name) return &f;
  return nullptr;
}

PreprocessingConfig parse_preprocessing(const GraphDef& graph) {
  PreprocessingConfig config;
  for (const auto& input : graph.inputs) {
    if (!input.preprocessing || input.preprocessing->kind == Value::Kind::null) continue;
    config.fields.push_back(parse_field(*input.preprocessing, input.name, false, graph.file));
    check_fit(input, config.fields.back());
  }
  for (size_t i = 0; i < graph.output_preprocessing.size() && i < graph.outputs.size(); ++i) {
    const auto& v = graph.output_preprocessing[i];
    if (!v || v->kind == Value::Kind::null) continue;
    config.fields.push_back(parse_field(*v, graph.outputs[i], true, graph.file));
  }
  return config;
}

Dims preprocessed_shape(const PreprocessingSpec& spec) {
  if (const auto* image = std::get_if<ImagePreprocessing>(&spec))
    return {image->height, image->width, image->channels};
  if (const auto* audio = std::get_if<AudioPreprocessing>(&spec)) {
    const Dim length = audio->max_length ? *audio->max_length : kDynamic;
    if (audio->features == AudioFeatures::none) return {length, audio->mono ? 1 : kDynamic};
    const Dim frames = audio->max_length ? spectrogram_frames(*audio, length) : kDynamic;
    return {frames, spectrogram_bins(*audio)};
  }
  if (const auto* text = std::get_if<TextPreprocessing>(&spec))
    return {text->output_sequence_length ? *text->output_sequence_length : kDynamic};
  return {};  // category: per output, the class axis the graph declares
}

}  // namespace fg
