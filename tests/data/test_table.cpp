// Tables (engine/data/table.hpp): CSV by RFC 4180 (quotes, "" escapes, newlines in quotes,
// CRLF), TSV, JSON lines; the errors name the file, row, line and column. Expected cells are the
// values the tests wrote.
#include <doctest/doctest.h>

#include "engine/data/table.hpp"
#include "tests/io/io_test_util.hpp"

namespace {

using fg::test::check_error;
using fg::test::TempDir;
using fg::test::write_bytes;

fg::Table table_of(const TempDir& dir, const std::string& name, const std::string& text) {
  write_bytes(dir.file(name), text);
  return fg::Table::read(dir.file(name));
}

}  // namespace

TEST_CASE("table: CSV by RFC 4180 (quotes, escapes, newlines in quotes, CRLF)") {
  TempDir dir;
  const fg::Table t = table_of(dir, "t.csv",
                               "image,text,label\r\n"
                               "a.png,\"hello, world\",shirt\r\n"
                               "b.png,\"she said \"\"hi\"\"\nand left\",coat\r\n"
                               "c.png,,\"\"\r\n");
  REQUIRE(t.columns() == std::vector<std::string>{"image", "text", "label"});
  REQUIRE(t.rows() == 3);
  CHECK(t.cell(0, 1) == "hello, world");
  CHECK(t.cell(1, 1) == "she said \"hi\"\nand left");
  CHECK(t.cell(1, 2) == "coat");
  CHECK(t.missing(2, 1));        // an empty unquoted cell
  CHECK_FALSE(t.missing(2, 2));  // "" is an empty text that is there
  CHECK(t.cell(2, 2).empty());
  CHECK(t.file_line(0) == 2);
  CHECK(t.file_line(1) == 3);
  CHECK(t.file_line(2) == 5);  // row 2's text spans lines 3 and 4
  CHECK(t.column_index("label") == 2);
  CHECK(t.column_index("nope") == -1);
  CHECK(t.where(2, 0) == dir.file("t.csv") + " row 3 (line 5), column 'image'");
}

TEST_CASE("table: a byte-order mark, blank lines and no final newline") {
  TempDir dir;
  const fg::Table t = table_of(dir, "t.csv", "\xEF\xBB\xBFx,y\n\n1,2\n\n3,4");
  REQUIRE(t.columns() == std::vector<std::string>{"x", "y"});
  REQUIRE(t.rows() == 2);
  CHECK(t.cell(1, 1) == "4");
  CHECK(t.file_line(1) == 5);
}

TEST_CASE("table: TSV has no quoting") {
  TempDir dir;
  const fg::Table t = table_of(dir, "t.tsv", "text\tlabel\r\n\"quoted\" word, here\t3\r\n");
  REQUIRE(t.rows() == 1);
  CHECK(t.cell(0, 0) == "\"quoted\" word, here");
  CHECK(t.cell(0, 1) == "3");
}

TEST_CASE("table: JSON lines (strings, numbers, booleans, arrays, null, missing keys)") {
  TempDir dir;
  const fg::Table t = table_of(dir, "t.jsonl",
                               "{\"text\": \"a \\\"b\\\"\", \"y\": 2.5, \"ok\": true}\n"
                               "\n"
                               "{\"text\": null, \"y\": [1, 2, 3], \"extra\": 7}\r\n");
  REQUIRE(t.columns() == std::vector<std::string>{"ok", "text", "y", "extra"});
  REQUIRE(t.rows() == 2);
  CHECK(t.cell(0, t.column_index("text")) == "a \"b\"");
  CHECK(t.cell(0, t.column_index("y")) == "2.5");
  CHECK(t.cell(0, t.column_index("ok")) == "true");
  CHECK(t.missing(1, t.column_index("text")));
  CHECK(t.cell(1, t.column_index("y")) == "[1,2,3]");
  CHECK(t.missing(0, t.column_index("extra")));  // a key first seen in a later row
  CHECK(t.cell(1, t.column_index("extra")) == "7");
  CHECK(t.file_line(1) == 3);
}

TEST_CASE("table: errors name the file, row, line and column") {
  TempDir dir;
  const std::string csv = dir.file("bad.csv");
  write_bytes(csv, "a,b\n1,2\n3\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":3", "row 2 has 1 cell", "header has 2"});
  write_bytes(csv, "a,b\n1,\"open\n2,3\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":2:3", "unterminated quoted field"});
  write_bytes(csv, "a,b\n1,\"x\"y\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":2:6", "after the closing quote"});
  write_bytes(csv, "a,b\n1,x\"y\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":2:4", "a quote inside an unquoted field"});
  write_bytes(csv, "a,a\n1,2\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":1", "column 'a' twice", "1 and 2"});
  write_bytes(csv, "a,,c\n1,2,3\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":1", "column 2 of the header has no name"});
  write_bytes(csv, "");
  check_error([&] { fg::Table::read(csv); }, {csv, "empty"});
  const std::string jsonl = dir.file("bad.jsonl");
  write_bytes(jsonl, "{\"a\": 1}\n{\"a\": 2,}\n");
  check_error([&] { fg::Table::read(jsonl); }, {jsonl + ":2:", "row 2 is not valid JSON"});
  write_bytes(jsonl, "{\"a\": 1}\n[1, 2]\n");
  check_error([&] { fg::Table::read(jsonl); }, {jsonl + ":2:1", "row 2 is a JSON array"});
  write_bytes(jsonl, "{\"a\": {\"b\": 1}}\n");
  check_error([&] { fg::Table::read(jsonl); }, {jsonl + ":1", "row 1, column 'a': an object"});
  check_error([&] { fg::Table::read(dir.file("t.txt")); }, {"t.txt", ".csv, .tsv, .jsonl"});
  check_error([&] { fg::Table::read(dir.file("none.csv")); }, {"none.csv"});
}

TEST_CASE("table: a cell over 16 MB is refused") {
  TempDir dir;
  const std::string csv = dir.file("huge.csv");
  write_bytes(csv, "a\n\"" + std::string((size_t(16) << 20) + 7, 'x') + "\"\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":2:1", "more than 16777216 bytes"});
  write_bytes(csv, "a\n" + std::string((size_t(16) << 20) + 1, 'x') + "\n");
  check_error([&] { fg::Table::read(csv); }, {csv + ":2:1", "more than 16777216 bytes"});
}
