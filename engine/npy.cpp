#include "engine/npy.hpp"

#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "engine/file_io.hpp"
#include "framework/error.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the .npy reader assumes a little-endian host");

namespace fg {

namespace {

struct Header {
  std::string descr;
  bool fortran_order = false;
  Dims shape;
};

// A Python dict literal with string keys and values that are strings, True/False or tuples of
// non-negative ints: exactly what numpy writes.
class DictParser {
 public:
  explicit DictParser(std::string_view s) : s_(s) {}

  std::map<std::string, std::string> parse(Header& h) {
    std::map<std::string, std::string> seen;  // key -> how it looked, for messages
    ws();
    expect('{');
    while (true) {
      ws();
      if (peek() == '}') break;
      std::string key = string();
      if (seen.count(key)) fail(fmt::format("duplicate key '{}'", key));
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        h.descr = string();
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
      } else if (key == "shape") {
        h.shape = tuple();
      } else {
        fail(fmt::format("unexpected key '{}' (expected 'descr', 'fortran_order', 'shape')", key));
      }
      seen[key] = key;
      ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      ws();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    ws();
    if (pos_ != s_.size()) fail("unexpected text after the dict");
    for (const char* k : {"descr", "fortran_order", "shape"})
      if (!seen.count(k)) throw Error(fmt::format("header has no '{}' key", k));
    return seen;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("malformed header at character {}: {}", pos_, what));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string string() {
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  Dims tuple() {
    expect('(');
    Dims dims;
    while (true) {
      ws();
      if (peek() == ')') break;
      if (peek() == '-') fail("negative dimension in shape");
      if (peek() < '0' || peek() > '9') fail("expected a non-negative integer in shape");
      Dim d = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (d > (std::numeric_limits<Dim>::max() - 9) / 10) fail("dimension too large in shape");
        d = d * 10 + (s_[pos_++] - '0');
      }
      if (peek() == 'L') ++pos_;  // Python 2 long
      dims.push_back(d);
      ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return dims;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

template <typename From, typename To>
void convert(const unsigned char* src, To* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, src + i * sizeof(From), sizeof(From));
    dst[i] = static_cast<To>(v);
  }
}

}  // namespace

namespace {

using ErrorMaker = std::function<Error(const std::string&)>;

// The preamble and the header dict; `data_offset` is where the raw data starts.
Header read_header(const unsigned char* p, size_t size, size_t& data_offset,
                   const ErrorMaker& error) {
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) {
    throw error(
        fmt::format("not an .npy file: expected the magic \"\\x93NUMPY\" at the start, "
                    "found {}",
                    size < 6 ? fmt::format("only {} bytes", size) : std::string("other bytes")));
  }
  const int major = p[6], minor = p[7];
  if ((major < 1 || major > 3) || minor != 0) {
    throw error(fmt::format("unsupported .npy format version {}.{}; expected 1.0, 2.0 or 3.0",
                            major, minor));
  }
  size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix)
    throw error(fmt::format("file is truncated: {} bytes, shorter than the preamble", size));
  size_t header_len =
      major == 1 ? (p[8] | (p[9] << 8))
                 : (size_t(p[8]) | size_t(p[9]) << 8 | size_t(p[10]) << 16 | size_t(p[11]) << 24);
  if (header_len > size - prefix) {
    throw error(
        fmt::format("header length says {} bytes, but only {} bytes follow (truncated file?)",
                    header_len, size - prefix));
  }
  Header h;
  try {
    DictParser(std::string_view(reinterpret_cast<const char*>(p) + prefix, header_len)).parse(h);
  } catch (const Error& e) {
    throw error(e.message());
  }
  if (h.fortran_order) {
    throw error("Fortran-order arrays are not supported; expected fortran_order False")
        .hint("save with np.save(path, np.ascontiguousarray(a))");
  }
  data_offset = prefix + header_len;
  return h;
}

// Accepts '<f4', '<f8', '<i4', '<i8' (and '=' for the native, little-endian order).
void check_descr(const std::string& d, const ErrorMaker& error) {
  const bool valid_order =
      d.size() == 3 && (d[0] == '<' || d[0] == '=' || d[0] == '>' || d[0] == '|');
  const bool known = valid_order && (d.substr(1) == "f4" || d.substr(1) == "f8" ||
                                     d.substr(1) == "i4" || d.substr(1) == "i8");
  if (!known) {
    throw error(
        fmt::format("unsupported dtype '{}'; expected one of '<f4', '<f8', '<i4', '<i8'", d));
  }
  if (d[0] == '>') {
    throw error(fmt::format("big-endian dtype '{}' is not supported; expected little-endian '<{}'",
                            d, d.substr(1)))
        .hint("convert with a.astype(a.dtype.newbyteorder('<'))");
  }
  if (d[0] == '|') {
    throw error(
        fmt::format("dtype '{}' has no byte order ('|'), which is ambiguous for a {}-byte "
                    "type; expected '<{}'",
                    d, d[2], d.substr(1)));
  }
}

// The element count, which must account for exactly the `found` data bytes.
size_t element_count(const Header& h, size_t item, size_t found, const ErrorMaker& error) {
  Dim count = 0;
  try {
    count = num_elements(h.shape);
  } catch (const Error&) {
    throw error(fmt::format("shape {} has too many elements", format_shape(h.shape)));
  }
  const size_t n = static_cast<size_t>(count);
  if (n > found / item) {
    throw error(fmt::format(
        "header says shape {} of '{}' = {} elements, which needs {} bytes of data, "
        "but the file has {} (truncated file or lying header)",
        format_shape(h.shape), h.descr, count,
        n <= SIZE_MAX / item ? fmt::format("{}", n * item) : std::string("too many"), found));
  }
  if (n * item != found) {
    throw error(
        fmt::format("{} bytes of trailing garbage: shape {} of '{}' needs {} bytes of data, "
                    "found {}",
                    found - n * item, format_shape(h.shape), h.descr, n * item, found));
  }
  return n;
}

// Converts `n` elements to the tensor's dtype (see read_npy for the rules).
void convert_data(const unsigned char* src, const NpyHeader& h, size_t n, Tensor& t,
                  const ErrorMaker& error) {
  if (t.dtype() == DType::f32) {
    convert_npy_to_f32(h, src, n, t.mutable_data<float>());
    return;
  }
  if (h.kind == 'f') {
    throw error(fmt::format("expected int32 data, found floating-point '{}'; floats are not "
                            "converted to int32",
                            h.descr))
        .hint("save the array as integers, e.g. np.save(path, a.astype(np.int32))");
  }
  const size_t bad = convert_npy_to_i32(h, src, n, t.mutable_data<int32_t>());
  if (bad < n) {
    int64_t v;
    std::memcpy(&v, src + 8 * bad, 8);
    throw error(
        fmt::format("value {} at flat index {} does not fit into int32 (data is '<i8')", v, bad));
  }
}

}  // namespace

NpyHeader parse_npy_header(const unsigned char* data, size_t size) {
  const ErrorMaker error = [](const std::string& message) { return Error(message); };
  NpyHeader out;
  const Header h = read_header(data, size, out.data_offset, error);
  check_descr(h.descr, error);
  out.descr = h.descr;
  out.kind = h.descr[1];
  out.item_size = h.descr[2] == '4' ? 4 : 8;
  out.shape = h.shape;
  out.elements = element_count(h, out.item_size, size - out.data_offset, error);
  return out;
}

NpyHeader npy_header_for(const std::string& descr, const Dims& shape) {
  const ErrorMaker error = [](const std::string& message) { return Error(message); };
  check_descr(descr, error);
  for (const Dim d : shape)
    if (d < 0) throw error(fmt::format("shape {} has a negative dimension", format_shape(shape)));
  NpyHeader out;
  out.descr = descr;
  out.kind = descr[1];
  out.item_size = descr[2] == '4' ? 4 : 8;
  out.shape = shape;
  Dim count = 0;
  try {
    count = num_elements(shape);
  } catch (const Error&) {
    throw error(fmt::format("shape {} has too many elements", format_shape(shape)));
  }
  if (static_cast<size_t>(count) > SIZE_MAX / out.item_size)
    throw error(fmt::format("shape {} has too many elements", format_shape(shape)));
  out.elements = static_cast<size_t>(count);
  return out;
}

void convert_npy_to_f32(const NpyHeader& h, const unsigned char* src, size_t n, float* dst) {
  if (h.kind == 'f' && h.item_size == 4)
    convert<float>(src, dst, n);
  else if (h.kind == 'f')
    convert<double>(src, dst, n);
  else if (h.item_size == 4)
    convert<int32_t>(src, dst, n);
  else
    convert<int64_t>(src, dst, n);
}

size_t convert_npy_to_i32(const NpyHeader& h, const unsigned char* src, size_t n, int32_t* dst) {
  if (h.kind != 'i') throw Error(fmt::format("'{}' data is not converted to int32", h.descr));
  if (h.item_size == 4) {
    convert<int32_t>(src, dst, n);
    return n;
  }
  for (size_t i = 0; i < n; ++i) {
    int64_t v;
    std::memcpy(&v, src + 8 * i, 8);
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
      return i;
    dst[i] = static_cast<int32_t>(v);
  }
  return n;
}

Tensor read_npy(const std::string& path, DType want, const std::string& input_name) {
  const ErrorMaker error = [&](const std::string& message) {
    return Error(input_name.empty() ? message : fmt::format("input '{}': {}", input_name, message))
        .in_file(path);
  };
  // The same message and hint, named after the file and input.
  const auto renamed = [&](const Error& e) {
    Error named = error(e.message());
    if (!e.hint_text().empty()) named.hint(e.hint_text());
    return named;
  };
  std::shared_ptr<const FileContents> file;
  try {
    file = FileContents::read(path);
  } catch (const Error& e) {
    throw renamed(e);
  }
  NpyHeader h;
  try {
    h = parse_npy_header(file->data(), file->size());
  } catch (const Error& e) {
    throw renamed(e);
  }
  Tensor t;
  try {
    t = Tensor(want, h.shape);
  } catch (const Error& e) {
    throw error(e.message());
  }
  convert_data(file->data() + h.data_offset, h, h.elements, t, error);
  return t;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  if (tensor.raw() == nullptr || static_cast<size_t>(num_elements(tensor.shape())) != tensor.size())
    throw Error("cannot write an empty (default-constructed) tensor").in_file(path);
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                  tensor.dtype() == DType::f32 ? "<f4" : "<i4", format_shape(tensor.shape()));
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) throw Error("shape too long for an .npy 1.0 header").in_file(path);
  std::string preamble = "\x93NUMPY";
  preamble += '\x01';
  preamble += '\x00';
  preamble += static_cast<char>(header.size() & 0xFF);
  preamble += static_cast<char>(header.size() >> 8);
  write_file_atomic(
      path,
      {preamble, header, std::string_view(static_cast<const char*>(tensor.raw()), tensor.bytes())});
}

}  // namespace fg
