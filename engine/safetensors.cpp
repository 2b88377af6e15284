#include "engine/safetensors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/file_io.hpp"
#include "engine/json_header.hpp"
#include "framework/error.hpp"

namespace fg {

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {  // inf / NaN (payload kept)
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: normalise
    int e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {

const std::vector<std::string> kDtypes = {"F32", "F16", "BF16", "I32", "I8"};

struct Entry {
  std::string name;
  std::string dtype;
  Dims shape;
  uint64_t begin = 0, end = 0;
};

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

int64_t get_int(const JsonValue& v, const std::string& what, const std::string& path,
                const std::string& name) {
  int64_t out = 0;
  if (!v.as_int64(out)) {
    std::string found = v.kind == JsonValue::Kind::number ? v.text : std::string(v.kind_name());
    throw Error(fmt::format("{} must be an integer, found {}", what, found))
        .in_file(path)
        .tensor(name);
  }
  return out;
}

Entry parse_entry(const std::string& name, const JsonValue& v, uint64_t data_size,
                  const std::string& path) {
  auto error = [&](const std::string& message) {
    return Error(message).in_file(path).tensor(name);
  };
  if (v.kind != JsonValue::Kind::object) {
    throw error(
        fmt::format("entry is a JSON {}, expected an object with \"dtype\", \"shape\" "
                    "and \"data_offsets\"",
                    v.kind_name()));
  }
  const JsonValue *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [key, value] : v.members) {
    if (key == "dtype")
      dtype = &value;
    else if (key == "shape")
      shape = &value;
    else if (key == "data_offsets")
      offsets = &value;
    else
      throw error(fmt::format("unknown field \"{}\" in entry", key))
          .hint(did_you_mean(key, {"dtype", "shape", "data_offsets"}));
  }
  if (!dtype) throw error("entry has no \"dtype\"");
  if (!shape) throw error("entry has no \"shape\"");
  if (!offsets) throw error("entry has no \"data_offsets\"");

  Entry e;
  e.name = name;
  if (dtype->kind != JsonValue::Kind::string)
    throw error(fmt::format("\"dtype\" must be a string, found {}", dtype->kind_name()));
  e.dtype = dtype->text;
  if (std::find(kDtypes.begin(), kDtypes.end(), e.dtype) == kDtypes.end()) {
    throw error(
        fmt::format("unsupported dtype '{}'; valid dtypes are {}", e.dtype, quoted_list(kDtypes)))
        .hint(closest_match(e.dtype, kDtypes).empty()
                  ? "convert the tensor to float32 before saving"
                  : did_you_mean(e.dtype, kDtypes));
  }
  if (shape->kind != JsonValue::Kind::array)
    throw error(
        fmt::format("\"shape\" must be an array of integers, found {}", shape->kind_name()));
  for (const JsonValue& d : shape->items) {
    int64_t dim = get_int(d, "every dimension in \"shape\"", path, name);
    if (dim < 0) throw error(fmt::format("negative dimension {} in shape", dim));
    e.shape.push_back(dim);
  }
  if (offsets->kind != JsonValue::Kind::array || offsets->items.size() != 2) {
    throw error(fmt::format("\"data_offsets\" must be an array [begin, end], found {}",
                            offsets->kind == JsonValue::Kind::array
                                ? fmt::format("{} items", offsets->items.size())
                                : std::string(offsets->kind_name())));
  }
  int64_t begin = get_int(offsets->items[0], "\"data_offsets\" begin", path, name);
  int64_t end = get_int(offsets->items[1], "\"data_offsets\" end", path, name);
  if (begin < 0 || end < begin)
    throw error(fmt::format("bad data_offsets [{}, {}]: expected 0 <= begin <= end", begin, end));
  if (static_cast<uint64_t>(end) > data_size) {
    throw error(
        fmt::format("data_offsets [{}, {}] lie outside the data section, which has {} bytes "
                    "(the file may be truncated)",
                    begin, end, data_size));
  }
  e.begin = static_cast<uint64_t>(begin);
  e.end = static_cast<uint64_t>(end);

  Dim count = 1;
  try {
    count = num_elements(e.shape);
  } catch (const Error&) {
    throw error(fmt::format("shape {} has too many elements", format_shape(e.shape)));
  }
  const uint64_t item = e.dtype == "F32" || e.dtype == "I32" ? 4 : e.dtype == "I8" ? 1 : 2;
  uint64_t count_u = static_cast<uint64_t>(count);
  if (count_u > data_size / item || count_u * item != e.end - e.begin) {
    throw error(
        fmt::format("shape {} of {} needs {} x {} bytes, but data_offsets [{}, {}] span {} bytes",
                    format_shape(e.shape), e.dtype, count, item, e.begin, e.end, e.end - e.begin));
  }
  return e;
}

void check_layout(std::vector<Entry>& entries, uint64_t data_size, const std::string& path) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered) {
      throw Error(fmt::format("tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data section",
                              previous->name, previous->begin, previous->end, e.name, e.begin,
                              e.end))
          .in_file(path);
    }
    if (e.begin > covered) {
      throw Error(fmt::format("bytes [{}, {}) of the data section belong to no tensor (holes are "
                              "not allowed)",
                              covered, e.begin))
          .in_file(path);
    }
    covered = e.end;
    previous = &e;
  }
  if (covered != data_size) {
    throw Error(fmt::format("the data section has {} bytes but the tensors cover only {}: {} "
                            "trailing bytes belong to no tensor",
                            data_size, covered, data_size - covered))
        .in_file(path);
  }
}

Tensor make_tensor(const Entry& e, const unsigned char* data,
                   const std::shared_ptr<const FileContents>& file) {
  const unsigned char* src = data + e.begin;
  if (e.dtype == "I8") return Tensor::borrow(DType::i8, e.shape, src, file);
  if (e.dtype == "I32") {
    if (reinterpret_cast<uintptr_t>(src) % 4 == 0)
      return Tensor::borrow(DType::i32, e.shape, src, file);
    Tensor t(DType::i32, e.shape);
    std::memcpy(t.mutable_data<int32_t>(), src, t.bytes());
    return t;
  }
  if (e.dtype == "F32" && reinterpret_cast<uintptr_t>(src) % 4 == 0)
    return Tensor::borrow(DType::f32, e.shape, src, file);
  Tensor t(DType::f32, e.shape);
  float* dst = t.mutable_data<float>();
  if (e.dtype == "F32") {
    std::memcpy(dst, src, t.bytes());
  } else {
    const bool half = e.dtype == "F16";
    for (size_t i = 0; i < t.size(); ++i) {
      uint16_t bits = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      dst[i] = half ? half_to_float(bits) : bfloat16_to_float(bits);
    }
  }
  return t;
}

}  // namespace

SafetensorsContents read_safetensors(const std::string& path) {
  auto file = FileContents::read(path);
  const size_t size = file->size();
  if (size < 8) {
    throw Error(fmt::format("file is too short to be safetensors: expected at least 8 bytes "
                            "(the header length), found {}",
                            size))
        .in_file(path);
  }
  const uint64_t header_len = read_le64(file->data());
  if (header_len > kMaxSafetensorsHeader) {
    throw Error(fmt::format("header length {} is absurd (limit {} bytes); this is probably not a "
                            "safetensors file",
                            header_len, kMaxSafetensorsHeader))
        .in_file(path);
  }
  if (header_len > size - 8) {
    throw Error(
        fmt::format("header length says {} bytes, but only {} bytes follow the 8-byte length "
                    "(truncated file?)",
                    header_len, size - 8))
        .in_file(path);
  }
  std::string_view header(reinterpret_cast<const char*>(file->data()) + 8, header_len);
  JsonValue root;
  try {
    root = parse_json(header);
  } catch (const Error& e) {
    throw Error("bad safetensors header: " + e.message()).in_file(path);
  }
  if (root.kind != JsonValue::Kind::object) {
    throw Error(fmt::format("the header must be a JSON object, found {}", root.kind_name()))
        .in_file(path);
  }
  const unsigned char* data = file->data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : root.members) {
    if (name == "__metadata__") {
      if (value.kind != JsonValue::Kind::object)
        throw Error(fmt::format("\"__metadata__\" must be an object, found {}", value.kind_name()))
            .in_file(path);
      for (const auto& [key, item] : value.members) {
        if (item.kind != JsonValue::Kind::string)
          throw Error(fmt::format("\"__metadata__\" value of \"{}\" must be a string, found {}",
                                  key, item.kind_name()))
              .in_file(path);
        out.metadata[key] = item.text;
      }
      continue;
    }
    entries.push_back(parse_entry(name, value, data_size, path));
  }
  check_layout(entries, data_size, path);
  for (const Entry& e : entries) {
    try {
      out.tensors.emplace(e.name, make_tensor(e, data, file));
    } catch (const std::bad_alloc&) {
      throw Error(fmt::format("out of memory converting tensor of shape {} to float32",
                              format_shape(e.shape)))
          .in_file(path)
          .tensor(e.name);
    }
  }
  out.file = file;
  return out;
}

namespace {

// The header as compact JSON. Names and metadata must be UTF-8 (JSON text is).
std::string header_text(const nlohmann::ordered_json& header, const std::string& path) {
  try {
    return header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("cannot write the header: a tensor name or metadata string is not "
                            "valid UTF-8 ({})",
                            e.what()))
        .in_file(path);
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  if (!metadata.empty()) json["__metadata__"] = metadata;
  std::vector<std::string_view> parts(2);
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw Error("'__metadata__' is reserved and cannot name a tensor").in_file(path);
    const char* dtype = t.dtype() == DType::f32 ? "F32" : t.dtype() == DType::i8 ? "I8" : "I32";
    if (t.raw() == nullptr || static_cast<size_t>(num_elements(t.shape())) != t.size())
      throw Error("cannot write an empty (default-constructed) tensor").in_file(path).tensor(name);
    json[name] = {
        {"dtype", dtype}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
    parts.emplace_back(static_cast<const char*>(t.raw()), t.bytes());
  }
  std::string header = header_text(json, path);
  header.append((8 - header.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  parts[0] = length;
  parts[1] = header;
  write_file_atomic(path, parts);
}

}  // namespace fg
