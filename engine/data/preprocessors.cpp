// Preprocessors (engine/data/preprocessors.hpp): the graph's `preprocessing:` per field, the
// vocabularies and class lists learnt from the training data, and their JSON state.
#include "engine/data/preprocessors.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/data/audio.hpp"
#include "engine/data/image.hpp"
#include "engine/data/table.hpp"
#include "framework/error.hpp"
#include "framework/graph_def.hpp"

namespace fg {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kStateFormat = "fusiongraph-preprocessing-1";

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).string();
}

// The values of a table's column that are there (missing cells are left out).
std::vector<std::string> column_values(const Table& table, const std::string& field,
                                       const char* what) {
  const int column = table.column_index(field);
  if (column < 0)
    throw Error(fmt::format("the {} '{}' is learnt from the training data, but the table has no "
                            "column '{}' (it has {})",
                            what, field, field, quoted_list(table.columns())))
        .in_file(table.path());
  std::vector<std::string> values;
  values.reserve(static_cast<size_t>(table.rows()));
  for (int64_t r = 0; r < table.rows(); ++r)
    if (!table.missing(r, column)) values.push_back(table.cell(r, column));
  return values;
}

Error state_error(const std::string& source, const std::string& message) {
  return Error(fmt::format("the preprocessing state saved with the weights does not fit the "
                           "graph: {}",
                           message))
      .in_file(source)
      .hint("use the graph the weights were trained with");
}

std::vector<std::string> string_list(const Json& j, const std::string& source,
                                     const std::string& what) {
  if (!j.is_array()) throw state_error(source, what + " is not a list");
  std::vector<std::string> out;
  for (const Json& v : j) {
    if (!v.is_string()) throw state_error(source, what + " holds a value that is not a string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

Preprocessors::Preprocessors(PreprocessingConfig config, const std::string& graph_dir)
    : config_(std::move(config)) {
  for (const FieldPreprocessing& f : config_.fields) {
    if (const auto* t = std::get_if<TextPreprocessing>(&f.spec)) {
      TextVectorizer vectorizer(*t);
      if (!t->vocabulary_file.empty())
        vectorizer.load_vocabulary(resolve(t->vocabulary_file, graph_dir));
      text_.emplace(f.name, std::move(vectorizer));
    } else if (const auto* c = std::get_if<CategoryPreprocessing>(&f.spec)) {
      categories_.emplace(f.name, CategoryEncoder(*c));
    }
  }
}

Preprocessors Preprocessors::for_graph(const GraphDef& graph) {
  return Preprocessors(parse_preprocessing(graph), fs::path(graph.file).parent_path().string());
}

bool Preprocessors::has_input(const std::string& name) const {
  return config_.input(name) != nullptr;
}

bool Preprocessors::has_output(const std::string& name) const {
  return config_.output(name) != nullptr;
}

bool Preprocessors::needs_adapt() const {
  for (const auto& [name, t] : text_)
    if (t.vocabulary().empty()) return true;
  for (const auto& [name, c] : categories_)
    if (c.classes().empty()) return true;
  return false;
}

void Preprocessors::adapt(const Table& table) {
  for (auto& [name, t] : text_) {
    if (!t.vocabulary().empty()) continue;
    const std::vector<std::string> texts = column_values(table, name, "vocabulary of input");
    t.adapt(texts);
  }
  for (auto& [name, c] : categories_) {
    if (!c.classes().empty()) continue;
    const std::vector<std::string> labels = column_values(table, name, "class list of output");
    if (labels.empty())
      throw Error(fmt::format("the class list of output '{}' is learnt from the training data, "
                              "but column '{}' holds no label",
                              name, name))
          .in_file(table.path());
    c.adapt(labels);
  }
}

std::string Preprocessors::state_json() const {
  Json text = Json::object(), category = Json::object();
  for (const auto& [name, t] : text_) text[name] = {{"vocabulary", t.vocabulary()}};
  for (const auto& [name, c] : categories_) category[name] = {{"classes", c.classes()}};
  return Json{{"format", kStateFormat}, {"text", text}, {"category", category}}.dump();
}

void Preprocessors::load_state_json(const std::string& json, const std::string& source) {
  Json state;
  try {
    state = Json::parse(json);
  } catch (const Json::exception& e) {
    throw state_error(source, fmt::format("it is not JSON ({})", e.what()));
  }
  if (!state.is_object() || !state.contains("format") || state["format"] != kStateFormat)
    throw state_error(source, fmt::format("it is not in the format '{}'", kStateFormat));
  std::map<std::string, TextVectorizer> text = text_;
  std::map<std::string, CategoryEncoder> categories = categories_;
  const Json text_state = state.value("text", Json::object());
  const Json category_state = state.value("category", Json::object());
  if (!text_state.is_object() || !category_state.is_object())
    throw state_error(source, "its 'text' or 'category' entry is not an object");
  for (const auto& [name, entry] : text_state.items()) {
    auto it = text.find(name);
    if (it == text.end())
      throw state_error(source, fmt::format("it holds a vocabulary for '{}', which is not a text "
                                            "input of the graph",
                                            name));
    std::vector<std::string> vocabulary =
        string_list(entry.is_object() ? entry.value("vocabulary", Json()) : Json(), source,
                    "the vocabulary of " + name);
    const int64_t max_tokens = it->second.config().max_tokens;
    if (max_tokens > 0 && static_cast<int64_t>(vocabulary.size()) + 2 > max_tokens)
      throw state_error(source, fmt::format("the vocabulary of input '{}' holds {} tokens (with "
                                            "padding and OOV), more than its max_tokens {}",
                                            name, vocabulary.size() + 2, max_tokens));
    it->second.set_vocabulary(std::move(vocabulary));
  }
  for (const auto& [name, entry] : category_state.items()) {
    auto it = categories.find(name);
    if (it == categories.end())
      throw state_error(source, fmt::format("it holds classes for '{}', which is not a category "
                                            "output of the graph",
                                            name));
    std::vector<std::string> classes =
        string_list(entry.is_object() ? entry.value("classes", Json()) : Json(), source,
                    "the classes of " + name);
    const std::vector<std::string>& declared = it->second.classes();
    if (!declared.empty() && declared != classes)
      throw state_error(source, fmt::format("output '{}' declares the classes {}, the weights "
                                            "were trained with {}",
                                            name, quoted_list(declared), quoted_list(classes)));
    it->second = CategoryEncoder(CategoryPreprocessing{std::move(classes)});
  }
  text_ = std::move(text);
  categories_ = std::move(categories);
}

void Preprocessors::preprocess_input(const std::string& input, const std::string& value,
                                     const std::string& base_dir, const std::string& where,
                                     SampleValue& out) const {
  const FieldPreprocessing* field = config_.input(input);
  if (field == nullptr)
    throw Error(fmt::format("{}: input '{}' has no preprocessing", where, input));
  if (const auto* text = std::get_if<TextPreprocessing>(&field->spec)) {
    (void)text;
    out.dtype = DType::i32;
    out.i32 = text_.at(input).encode(value, where);
    out.shape = {static_cast<int64_t>(out.i32.size())};
    return;
  }
  const std::string path = resolve(value, base_dir);
  try {
    if (const auto* image = std::get_if<ImagePreprocessing>(&field->spec)) {
      out.dtype = DType::f32;
      out.shape = {image->height, image->width, image->channels};
      out.f32.resize(static_cast<size_t>(image->height * image->width * image->channels));
      preprocess_image_file(path, *image, out.f32.data());
    } else if (const auto* audio = std::get_if<AudioPreprocessing>(&field->spec)) {
      out.dtype = DType::f32;
      preprocess_audio_file(path, *audio, out.f32, out.shape);
    } else {
      throw Error(
          fmt::format("input '{}' has a category preprocessing, which only outputs take", input));
    }
  } catch (const Error& e) {
    Error wrapped(fmt::format("{}, file '{}': {}", where, path, e.message()));
    if (!e.hint_text().empty()) wrapped.hint(e.hint_text());
    throw wrapped;
  }
}

int32_t Preprocessors::class_id(const std::string& output, const std::string& label,
                                const std::string& where) const {
  auto it = categories_.find(output);
  if (it == categories_.end())
    throw Error(fmt::format("{}: output '{}' has no category preprocessing", where, output));
  return it->second.id_of(label, where);
}

const std::vector<std::string>& Preprocessors::class_names(const std::string& output) const {
  static const std::vector<std::string> kNone;
  auto it = categories_.find(output);
  return it == categories_.end() ? kNone : it->second.classes();
}

const TextVectorizer* Preprocessors::text(const std::string& input) const {
  auto it = text_.find(input);
  return it == text_.end() ? nullptr : &it->second;
}

}  // namespace fg
