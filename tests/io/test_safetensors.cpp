#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "engine/safetensors.hpp"
#include "engine/weights.hpp"
#include "io_test_util.hpp"

using fg::DType;
using fg::Tensor;
using fg::test::check_error;
using fg::test::le_bytes;
using fg::test::raw_of;
using fg::test::TempDir;
using fg::test::write_bytes;

namespace {

Tensor make_f32(fg::Dims shape, float start) {
  Tensor t(DType::f32, std::move(shape));
  float* p = t.mutable_data<float>();
  for (size_t i = 0; i < t.size(); ++i) p[i] = start + 0.25f * static_cast<float>(i);
  return t;
}

// A safetensors file from a header text and a data section, written by hand.
std::string st_file(const std::string& header, const std::string& data) {
  return le_bytes(header.size(), 8) + header + data;
}

// The value of a binary16 pattern, from the IEEE 754 definition (not from the code under test).
double half_reference(uint16_t h) {
  int sign = (h >> 15) ? -1 : 1;
  int e = (h >> 10) & 0x1F;
  int m = h & 0x3FF;
  if (e == 0x1F) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m / 1024.0, -14);
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

double bf16_reference(uint16_t b) {
  int sign = (b >> 15) ? -1 : 1;
  int e = (b >> 7) & 0xFF;
  int m = b & 0x7F;
  if (e == 0xFF) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m / 128.0, -126);
  return sign * std::ldexp(1.0 + m / 128.0, e - 127);
}

void check_against(const Tensor& t, double (*reference)(uint16_t)) {
  REQUIRE(t.size() == 65536);
  const float* p = t.data<float>();
  int bad = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    double want = reference(static_cast<uint16_t>(i));
    bool ok = std::isnan(want)
                  ? std::isnan(p[i])
                  : (static_cast<double>(p[i]) == want && std::signbit(p[i]) == std::signbit(want));
    if (!ok && bad++ < 5) FAIL_CHECK("pattern " << i << ": got " << p[i] << ", want " << want);
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, shapes, values and metadata") {
  TempDir dir;
  std::map<std::string, Tensor> tensors;
  tensors["dense.kernel"] = make_f32({7, 13}, -3.0f);
  tensors["dense.bias"] = make_f32({13}, 1.5f);
  tensors["scalar.gain"] = make_f32({}, 2.0f);
  tensors["empty.w"] = make_f32({0, 4}, 0.0f);
  std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "a \"quoted\"\nline"}};
  const std::string path = dir.file("w.safetensors");
  fg::write_safetensors(path, tensors, meta);

  auto back = fg::read_safetensors(path);
  CHECK(back.metadata == meta);
  REQUIRE(back.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    const Tensor& r = back.tensors.at(name);
    CHECK(r.dtype() == DType::f32);
    CHECK(r.shape() == t.shape());
    REQUIRE(r.size() == t.size());
    for (size_t i = 0; i < t.size(); ++i) CHECK(r.data<float>()[i] == t.data<float>()[i]);
  }
  // aligned F32 data is borrowed from the mapping, not copied: it is read-only
  CHECK_THROWS_AS(back.tensors.at("dense.kernel").mutable_data<float>(), fg::Error);
}

TEST_CASE("safetensors writing is deterministic with sorted keys and an 8-byte aligned header") {
  TempDir dir;
  fg::WeightStore a, b;
  a.set("z.kernel", make_f32({2, 2}, 1.0f));
  a.set("a.bias", make_f32({3}, 2.0f));
  b.set("a.bias", make_f32({3}, 2.0f));
  b.set("z.kernel", make_f32({2, 2}, 1.0f));
  a.save_safetensors(dir.file("a.safetensors"));
  b.save_safetensors(dir.file("b.safetensors"));
  std::string bytes = fg::test::read_bytes(dir.file("a.safetensors"));
  CHECK(bytes == fg::test::read_bytes(dir.file("b.safetensors")));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  std::string header = bytes.substr(8, n);
  CHECK(header.find("\"a.bias\"") < header.find("\"z.kernel\""));
  CHECK(bytes.size() == 8 + n + 4 * (4 + 3));
}

TEST_CASE("borrowed safetensors tensors stay valid after the file is removed") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  fg::write_safetensors(path, {{"x.w", make_f32({127}, 0.5f)}});
  Tensor kept;
  {
    fg::WeightStore store = fg::WeightStore::load_safetensors(path);
    CHECK(store.source() == path);
    REQUIRE(store.find("x.w") != nullptr);
    CHECK(store.find("nope") == nullptr);
    kept = *store.find("x.w");
  }
  ::unlink(path.c_str());
  REQUIRE(kept.size() == 127);
  for (size_t i = 0; i < 127; ++i) CHECK(kept.data<float>()[i] == 0.5f + 0.25f * i);
}

TEST_CASE("unaligned F32 data is copied correctly") {
  TempDir dir;
  // header of 57 bytes: data starts at byte 65, not 4-byte aligned
  std::string header = R"({"u.w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  header.append(57 - header.size(), ' ');
  REQUIRE(header.size() == 57);
  std::vector<float> values{1.25f, -7.5f, 3.0e-20f};
  write_bytes(dir.file("u.safetensors"), st_file(header, raw_of(values)));
  auto back = fg::read_safetensors(dir.file("u.safetensors"));
  Tensor& t = back.tensors.at("u.w");
  for (size_t i = 0; i < 3; ++i) CHECK(t.data<float>()[i] == values[i]);
  CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 4 == 0);
}

TEST_CASE("F16 data converts exactly to f32 for all 65536 patterns") {
  TempDir dir;
  std::vector<uint16_t> bits(65536);
  for (uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<uint16_t>(i);
  std::string header = R"({"h.w":{"dtype":"F16","shape":[256,256],"data_offsets":[0,131072]}})";
  write_bytes(dir.file("h.safetensors"), st_file(header, raw_of(bits)));
  auto back = fg::read_safetensors(dir.file("h.safetensors"));
  const Tensor& t = back.tensors.at("h.w");
  CHECK(t.shape() == fg::Dims{256, 256});
  check_against(t, half_reference);
  // a few well-known values, stated by hand
  CHECK(t.data<float>()[0x3C00] == 1.0f);
  CHECK(t.data<float>()[0xC000] == -2.0f);
  CHECK(t.data<float>()[0x7BFF] == 65504.0f);
  CHECK(t.data<float>()[0x0001] == std::ldexp(1.0f, -24));
  CHECK(t.data<float>()[0x3555] == doctest::Approx(0.33325195).epsilon(1e-7));
}

TEST_CASE("BF16 data converts exactly to f32 for all 65536 patterns") {
  TempDir dir;
  std::vector<uint16_t> bits(65536);
  for (uint32_t i = 0; i < 65536; ++i) bits[i] = static_cast<uint16_t>(i);
  std::string header = R"({"b.w":{"dtype":"BF16","shape":[65536],"data_offsets":[0,131072]}})";
  write_bytes(dir.file("b.safetensors"), st_file(header, raw_of(bits)));
  auto back = fg::read_safetensors(dir.file("b.safetensors"));
  check_against(back.tensors.at("b.w"), bf16_reference);
  CHECK(back.tensors.at("b.w").data<float>()[0x3F80] == 1.0f);
  CHECK(back.tensors.at("b.w").data<float>()[0xC040] == -3.0f);
}

TEST_CASE("malformed safetensors files give clear errors") {
  TempDir dir;
  const std::string f24 = std::string(24, '\x01');  // 24 bytes of data
  auto one = [](const std::string& entry) { return "{\"w\":" + entry + "}"; };
  struct Case {
    std::string name, bytes;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {"empty file", "", {"too short", "at least 8 bytes", "found 0"}},
      {"five bytes", std::string("\x05\0\0\0\0", 5), {"too short", "found 5"}},
      {"absurd header length",
       le_bytes(1ull << 40, 8) + "{}",
       {"header length 1099511627776", "absurd"}},
      {"header longer than the file",
       le_bytes(1000, 8) + "{\"w\":1}",
       {"header length says 1000 bytes", "only 7 bytes follow", "truncated"}},
      {"bad JSON",
       st_file(R"({"w":{"dtype":"F32",})", ""),
       {"bad safetensors header", "malformed JSON at byte"}},
      {"trailing comma",
       st_file(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},})", f24),
       {"trailing comma in object"}},
      {"text after the object", st_file(R"({} x)", ""), {"unexpected text after"}},
      {"not an object", st_file(R"([1,2])", ""), {"must be a JSON object", "found array"}},
      {"non-object entry",
       st_file(one("3"), ""),
       {"tensor 'w'", "entry is a JSON number", "expected an object"}},
      {"wrong dtype string",
       st_file(one(R"({"dtype":"FP32","shape":[6],"data_offsets":[0,24]})"), f24),
       {"tensor 'w'", "unsupported dtype 'FP32'", "'F32', 'F16', 'BF16'", "did you mean 'F32'"}},
      {"F64 dtype",
       st_file(one(R"({"dtype":"F64","shape":[3],"data_offsets":[0,24]})"), f24),
       {"unsupported dtype 'F64'", "valid dtypes are"}},
      {"shape does not match the bytes",
       st_file(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})"),
               std::string(20, '\0')),
       {"tensor 'w'", "shape (2, 3) of F32 needs 6 x 4 bytes", "span 20 bytes"}},
      {"negative dim",
       st_file(one(R"({"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]})"), f24),
       {"negative dimension -2"}},
      {"fractional dim",
       st_file(one(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,24]})"), f24),
       {"must be an integer, found 2.5"}},
      {"offsets outside the data",
       st_file(one(R"({"dtype":"F32","shape":[100],"data_offsets":[0,400]})"), f24),
       {"data_offsets [0, 400] lie outside the data section", "24 bytes"}},
      {"truncated data",
       st_file(one(R"({"dtype":"F32","shape":[6],"data_offsets":[0,24]})"), f24.substr(0, 13)),
       {"outside the data section", "13 bytes", "truncated"}},
      {"overlapping tensors",
       st_file(
           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
           f24),
       {"'a' [0, 16]", "'b' [8, 24]", "overlap"}},
      {"duplicate key",
       st_file(
           R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})",
           f24),
       {"duplicate key \"w\""}},
      {"missing data_offsets",
       st_file(one(R"({"dtype":"F32","shape":[6]})"), f24),
       {"no \"data_offsets\""}},
      {"misspelt field",
       st_file(one(R"({"dtpye":"F32","shape":[6],"data_offsets":[0,24]})"), f24),
       {"unknown field \"dtpye\"", "did you mean 'dtype'"}},
      {"trailing bytes",
       st_file(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), f24),
       {"8 trailing bytes belong to no tensor"}},
      {"begin after end",
       st_file(one(R"({"dtype":"F32","shape":[0],"data_offsets":[16,8]})"), f24),
       {"bad data_offsets [16, 8]", "begin <= end"}},
      {"three offsets",
       st_file(one(R"({"dtype":"F32","shape":[6],"data_offsets":[0,12,24]})"), f24),
       {"[begin, end]", "found 3 items"}},
      {"metadata with a number",
       st_file(R"({"__metadata__":{"epoch":3}})", ""),
       {"\"__metadata__\" value of \"epoch\" must be a string", "found number"}},
      {"bad escape", st_file(R"({"w\q":1})", ""), {"unknown escape '\\q'"}},
      {"element count overflow",
       st_file(
           one(R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,24]})"),
           f24),
       {"too many elements"}},
      {"huge offset number",
       st_file(one(R"({"dtype":"F32","shape":[6],"data_offsets":[0,99999999999999999999]})"), f24),
       {"must be an integer, found 99999999999999999999"}},
      {"deep nesting",
       st_file(std::string(100, '[') + std::string(100, ']'), ""),
       {"nesting deeper than 64"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    INFO("case: " << c.name);
    const std::string path = dir.file("bad" + std::to_string(i) + ".safetensors");
    write_bytes(path, c.bytes);
    std::vector<std::string> words = c.words;
    words.push_back(path);  // every message names the file
    check_error([&] { fg::read_safetensors(path); }, words);
  }
  CHECK(cases.size() >= 24);
}

TEST_CASE("reading a missing file or a directory as safetensors fails clearly") {
  TempDir dir;
  check_error([&] { fg::read_safetensors(dir.file("nope.safetensors")); },
              {"nope.safetensors", "cannot open file", "No such file"});
  check_error([&] { fg::read_safetensors(dir.path().string()); }, {"is a directory"});
}

TEST_CASE("safetensors writes and reads int32 and int8 tensors (quantized weights files)") {
  TempDir dir;
  Tensor ints(DType::i32, {3});
  Tensor bytes(DType::i8, {7});
  for (int i = 0; i < 3; ++i) ints.mutable_data<int32_t>()[i] = -100000 * i + 7;
  for (int i = 0; i < 7; ++i) bytes.mutable_data<int8_t>()[i] = static_cast<int8_t>(i * 37 - 127);
  const std::string path = dir.file("i.safetensors");
  fg::write_safetensors(path, {{"t.ids", ints}, {"t.q", bytes}});
  const std::string raw = fg::test::read_bytes(path);
  CHECK(raw.find("\"I32\"") != std::string::npos);
  CHECK(raw.find("\"I8\"") != std::string::npos);
  const auto back = fg::read_safetensors(path);
  REQUIRE(back.tensors.at("t.ids").dtype() == DType::i32);
  REQUIRE(back.tensors.at("t.q").dtype() == DType::i8);
  for (int i = 0; i < 3; ++i) CHECK(back.tensors.at("t.ids").data<int32_t>()[i] == -100000 * i + 7);
  for (int i = 0; i < 7; ++i)
    CHECK(back.tensors.at("t.q").data<int8_t>()[i] == static_cast<int8_t>(i * 37 - 127));
  // An I8 entry whose byte count does not fit its shape is refused.
  check_error(
      [&] {
        const std::string header =
            R"({"q": {"dtype": "I8", "shape": [4], "data_offsets": [0, 3]}})";
        fg::test::write_bytes(dir.file("bad.safetensors"),
                              fg::test::le_bytes(header.size(), 8) + header + "abc");
        fg::read_safetensors(dir.file("bad.safetensors"));
      },
      {"shape (4,) of I8 needs 4 x 1 bytes"});
}

TEST_CASE("safetensors writes are atomic") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  fg::write_safetensors(path, {{"a.w", make_f32({4}, 1.0f)}});
  const std::string before = fg::test::read_bytes(path);

  SUBCASE("overwriting replaces the file and leaves no temp file") {
    fg::write_safetensors(path, {{"a.w", make_f32({5}, 2.0f)}});
    CHECK(fg::read_safetensors(path).tensors.at("a.w").size() == 5);
    CHECK(dir.entries() == std::vector<std::string>{"w.safetensors"});
  }
  SUBCASE("a missing target directory fails before anything is written") {
    check_error(
        [&] {
          fg::write_safetensors(dir.file("no/such/dir/w.safetensors"), {{"a.w", make_f32({4}, 0)}});
        },
        {"cannot create temporary file", "No such file or directory"});
    CHECK(dir.entries() == std::vector<std::string>{"w.safetensors"});
  }
  SUBCASE("a failing rename removes the temp file") {
    // the target is a directory: the temp file is written, the rename fails
    std::filesystem::create_directory(dir.file("target.safetensors"));
    check_error(
        [&] {
          fg::write_safetensors(dir.file("target.safetensors"), {{"a.w", make_f32({4}, 0)}});
        },
        {"target.safetensors", "renaming"});
    auto entries = dir.entries();
    std::sort(entries.begin(), entries.end());
    CHECK(entries == std::vector<std::string>{"target.safetensors", "w.safetensors"});
    CHECK(std::filesystem::is_directory(dir.file("target.safetensors")));
  }
  SUBCASE("a read-only directory keeps the old file") {
    ::chmod(dir.path().c_str(), 0555);
    if (::access(dir.path().c_str(), W_OK) == 0) {
      MESSAGE("running with privileges that ignore directory permissions; skipping this part");
    } else {
      check_error(
          [&] {
            fg::write_safetensors(path, {{"a.w", make_f32({9}, 0)}});
          },
          {"cannot create temporary file", "Permission denied"});
    }
    ::chmod(dir.path().c_str(), 0755);
    CHECK(dir.entries() == std::vector<std::string>{"w.safetensors"});
  }
  CHECK((fg::test::read_bytes(path) == before ||
         fg::read_safetensors(path).tensors.at("a.w").size() == 5));
}
