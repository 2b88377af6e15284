// Data-set tables: CSV, TSV or JSON lines, one row per sample (docs/data.md, "Tables").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fg {

class Table {
 public:
  // By extension: .csv (RFC 4180: quotes, "" escapes, newlines inside quotes, CRLF), .tsv,
  // .jsonl / .ndjson (one JSON object per line; strings, numbers, booleans, null). The first CSV
  // / TSV line is the header. fg::Error naming the file, row (1-based, header = row 1 for CSV)
  // and column for an unterminated quote, a row with the wrong number of cells, invalid JSON,
  // a duplicate or empty column name.
  static Table read(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& columns() const { return columns_; }
  int64_t rows() const { return static_cast<int64_t>(cells_.size()); }
  // -1 when there is no such column.
  int column_index(const std::string& name) const;
  // The cell as text (JSON numbers as written, null and missing keys as empty with
  // missing() true).
  const std::string& cell(int64_t row, int column) const;
  bool missing(int64_t row, int column) const;
  // The row's number in the file, for messages (line of the row's start in CSV / TSV / JSONL).
  int64_t file_line(int64_t row) const;
  // "train.csv row 12 (line 13), column 'image'"
  std::string where(int64_t row, int column) const;

 private:
  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> cells_;
  std::vector<std::vector<bool>> missing_;
  std::vector<int64_t> lines_;
};

}  // namespace fg
