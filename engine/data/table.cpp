// Tables (engine/data/table.hpp): CSV (RFC 4180), TSV (IANA text/tab-separated-values) and JSON
// lines, read whole into cells, every problem an fg::Error at the file, line and column.
#include "engine/data/table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "engine/mapped_file.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

constexpr size_t kMaxCellBytes = size_t(16) << 20;  // a cell or JSON line of untrusted input
constexpr int64_t kMaxRows = 100000000;             // 10^8 samples

enum class Format { csv, tsv, jsonl };

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Format format_of(const std::string& path) {
  std::string lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ends_with(lower, ".csv")) return Format::csv;
  if (ends_with(lower, ".tsv")) return Format::tsv;
  if (ends_with(lower, ".jsonl") || ends_with(lower, ".ndjson")) return Format::jsonl;
  throw Error("a table must be a .csv, .tsv, .jsonl or .ndjson file (by its extension)")
      .in_file(path);
}

int clamp_int(int64_t v) {
  return static_cast<int>(std::min<int64_t>(v, 2147483647));
}

Error table_error(const std::string& path, int64_t line, int64_t column, const std::string& msg) {
  return Error(msg).at(SourceLoc{path, clamp_int(line), clamp_int(column)});
}

// One parsed CSV / TSV record: its cells, which were empty and unquoted, and its first line.
struct Record {
  std::vector<std::string> cells;
  std::vector<bool> missing;
  int64_t line = 0;
};

// A reader of delimiter-separated records over the file's bytes. CSV: RFC 4180 (fields in
// double quotes may hold the separator, newlines and "" for a quote; CRLF or LF ends a record).
// TSV: no quoting (a field cannot hold a tab or a newline), CRLF or LF.
class DelimitedReader {
 public:
  DelimitedReader(std::string path, std::string_view text, char separator, bool quoting)
      : path_(std::move(path)), text_(text), separator_(separator), quoting_(quoting) {}

  bool done() const { return pos_ >= text_.size(); }
  int64_t line() const { return line_; }

  // False at the end. Blank lines (nothing between two line ends) are skipped.
  bool next(Record& record) {
    while (!done() && at_line_end()) skip_line_end();
    if (done()) return false;
    record.cells.clear();
    record.missing.clear();
    record.line = line_;
    while (true) {
      read_field(record);
      if (done()) return true;
      if (text_[pos_] == separator_) {
        advance();
        if (done() || at_line_end()) {  // a trailing separator: one more empty field
          record.cells.emplace_back();
          record.missing.push_back(true);
          if (!done()) skip_line_end();
          return true;
        }
        continue;
      }
      skip_line_end();
      return true;
    }
  }

 private:
  bool at_line_end() const {
    return text_[pos_] == '\n' ||
           (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ||
           text_[pos_] == '\r';
  }
  void skip_line_end() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
    column_ = 1;
  }
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }
  void check_size(size_t bytes, int64_t line, int64_t column) const {
    if (bytes > kMaxCellBytes)
      throw table_error(path_, line, column,
                        fmt::format("a cell of more than {} bytes (16 MB); a table cell holds a "
                                    "path, a text or a label",
                                    kMaxCellBytes));
  }

  void read_field(Record& record) {
    std::string cell;
    const int64_t start_line = line_, start_column = column_;
    if (quoting_ && text_[pos_] == '"') {
      advance();
      while (true) {
        if (done())
          throw table_error(path_, start_line, start_column,
                            "unterminated quoted field: the file ends before its closing quote");
        const char c = text_[pos_];
        if (c == '"') {
          if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
            cell += '"';
            advance();
            advance();
            continue;
          }
          advance();
          break;
        }
        cell += c;
        advance();
        if ((cell.size() & 0xFFFF) == 0) check_size(cell.size(), start_line, start_column);
      }
      check_size(cell.size(), start_line, start_column);
      if (!done() && text_[pos_] != separator_ && !at_line_end())
        throw table_error(path_, line_, column_,
                          fmt::format("unexpected '{}' after the closing quote of a field (a "
                                      "quote inside a quoted field is written \"\")",
                                      text_[pos_]));
      record.cells.push_back(std::move(cell));
      record.missing.push_back(false);
      return;
    }
    const size_t begin = pos_;
    while (!done() && text_[pos_] != separator_ && !at_line_end()) {
      if (quoting_ && text_[pos_] == '"')
        throw table_error(path_, line_, column_,
                          "a quote inside an unquoted field; quote the whole field and write "
                          "the quote as \"\" (RFC 4180)");
      ++pos_;
      ++column_;
    }
    if (pos_ - begin > kMaxCellBytes) check_size(pos_ - begin, start_line, start_column);
    cell.assign(text_.data() + begin, pos_ - begin);
    record.missing.push_back(cell.empty());
    record.cells.push_back(std::move(cell));
  }

  std::string path_;
  std::string_view text_;
  char separator_;
  bool quoting_;
  size_t pos_ = 0;
  int64_t line_ = 1, column_ = 1;
};

void check_header(const std::string& path, const std::vector<std::string>& columns) {
  std::map<std::string, size_t> seen;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c].empty())
      throw table_error(path, 1, 0, fmt::format("column {} of the header has no name", c + 1));
    auto [it, fresh] = seen.emplace(columns[c], c);
    if (!fresh)
      throw table_error(path, 1, 0,
                        fmt::format("the header names column '{}' twice (columns {} and {})",
                                    columns[c], it->second + 1, c + 1));
  }
}

void check_row_count(const std::string& path, int64_t rows, int64_t line) {
  if (rows >= kMaxRows)
    throw table_error(
        path, line, 0,
        fmt::format("more than {} rows; split the data set into several tables", kMaxRows));
}

}  // namespace

// The parts of a Table that the file readers fill.
struct TableParts {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> cells;
  std::vector<std::vector<bool>> missing;
  std::vector<int64_t> lines;
};

namespace {

TableParts read_delimited(const std::string& path, std::string_view text, char separator,
                          bool quoting) {
  TableParts t;
  DelimitedReader reader(path, text, separator, quoting);
  Record record;
  if (!reader.next(record))
    throw table_error(path, 1, 0, "the table is empty: expected a header line of column names");
  t.columns = record.cells;
  check_header(path, t.columns);
  while (reader.next(record)) {
    const int64_t row = static_cast<int64_t>(t.cells.size());
    check_row_count(path, row, record.line);
    if (record.cells.size() != t.columns.size())
      throw table_error(
          path, record.line, 0,
          fmt::format("row {} has {} cell{} but the header has {} columns", row + 1,
                      record.cells.size(), record.cells.size() == 1 ? "" : "s", t.columns.size()));
    t.cells.push_back(std::move(record.cells));
    t.missing.push_back(std::move(record.missing));
    t.lines.push_back(record.line);
  }
  return t;
}

// A JSON value as a cell: strings as they are, numbers and booleans as JSON text, arrays (of
// numbers, for targets) as JSON text; objects are refused.
std::string cell_of(const nlohmann::json& v, const std::string& path, int64_t line, int64_t row,
                    const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object())
    throw table_error(path, line, 0,
                      fmt::format("row {}, column '{}': an object; a cell is a string, a number, "
                                  "a boolean, an array of numbers or null",
                                  row + 1, key));
  return v.dump();
}

void add_json_row(TableParts& t, std::map<std::string, int>& index, const nlohmann::json& object,
                  const std::string& path, int64_t line) {
  const int64_t row = static_cast<int64_t>(t.cells.size());
  std::vector<std::string> cells(t.columns.size());
  std::vector<bool> missing(t.columns.size(), true);
  for (const auto& [key, value] : object.items()) {
    if (key.empty())
      throw table_error(path, line, 0, fmt::format("row {} has a key that is empty", row + 1));
    auto [it, fresh] = index.emplace(key, static_cast<int>(t.columns.size()));
    if (fresh) {
      t.columns.push_back(key);
      cells.emplace_back();
      missing.push_back(true);
    }
    if (value.is_null()) continue;
    cells[it->second] = cell_of(value, path, line, row, key);
    missing[it->second] = false;
  }
  t.cells.push_back(std::move(cells));
  t.missing.push_back(std::move(missing));
  t.lines.push_back(line);
}

TableParts read_json_lines(const std::string& path, std::string_view text) {
  TableParts t;
  std::map<std::string, int> index;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    ++line;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view body = text.substr(pos, end - pos);
    pos = end + 1;
    if (!body.empty() && body.back() == '\r') body.remove_suffix(1);
    if (body.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (body.size() > kMaxCellBytes)
      throw table_error(path, line, 0,
                        "a line of more than 16 MB; a row holds paths, texts and "
                        "labels");
    check_row_count(path, static_cast<int64_t>(t.cells.size()), line);
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(body.begin(), body.end());
    } catch (const nlohmann::json::parse_error& e) {
      throw table_error(path, line, static_cast<int64_t>(e.byte),
                        fmt::format("row {} is not valid JSON: {}", t.cells.size() + 1, e.what()));
    }
    if (!object.is_object())
      throw table_error(path, line, 1,
                        fmt::format("row {} is a JSON {}, not an object of column: value",
                                    t.cells.size() + 1, object.type_name()));
    add_json_row(t, index, object, path, line);
  }
  if (t.cells.empty()) throw table_error(path, 1, 0, "the table holds no rows");
  for (auto& row : t.cells) row.resize(t.columns.size());  // keys first seen in later rows
  for (auto& row : t.missing) row.resize(t.columns.size(), true);
  return t;
}

}  // namespace

Table Table::read(const std::string& path) {
  const Format format = format_of(path);
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  std::string_view text(reinterpret_cast<const char*>(file->data()), file->size());
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM
  TableParts parts =
      format == Format::jsonl
          ? read_json_lines(path, text)
          : read_delimited(path, text, format == Format::csv ? ',' : '\t', format == Format::csv);
  Table t;
  t.path_ = path;
  t.columns_ = std::move(parts.columns);
  t.cells_ = std::move(parts.cells);
  t.missing_ = std::move(parts.missing);
  t.lines_ = std::move(parts.lines);
  return t;
}

int Table::column_index(const std::string& name) const {
  for (size_t c = 0; c < columns_.size(); ++c)
    if (columns_[c] == name) return static_cast<int>(c);
  return -1;
}

const std::string& Table::cell(int64_t row, int column) const {
  return cells_.at(static_cast<size_t>(row)).at(static_cast<size_t>(column));
}

bool Table::missing(int64_t row, int column) const {
  return missing_.at(static_cast<size_t>(row)).at(static_cast<size_t>(column));
}

int64_t Table::file_line(int64_t row) const {
  return lines_.at(static_cast<size_t>(row));
}

std::string Table::where(int64_t row, int column) const {
  const std::string name =
      column >= 0 && column < static_cast<int>(columns_.size()) ? columns_[column] : "?";
  return fmt::format("{} row {} (line {}), column '{}'", path_, row + 1, file_line(row), name);
}

}  // namespace fg
