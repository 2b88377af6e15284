#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>

#include "engine/npy.hpp"
#include "io_test_util.hpp"

using fg::DType;
using fg::Tensor;
using fg::test::check_error;
using fg::test::le_bytes;
using fg::test::raw_of;
using fg::test::TempDir;
using fg::test::write_bytes;

namespace {

// An .npy file built by hand: magic, version, header length (2 or 4 bytes), header, data.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict + "\n";
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  out += le_bytes(header.size(), major == 1 ? 2 : 4);
  return out + header + data;
}

std::string dict(const std::string& descr, const std::string& shape,
                 const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

}  // namespace

TEST_CASE("npy round trip for float32 and int32 in several shapes") {
  TempDir dir;
  for (fg::Dims shape :
       {fg::Dims{2, 3}, fg::Dims{7}, fg::Dims{}, fg::Dims{0, 3}, fg::Dims{1, 13, 5}}) {
    INFO("shape " << fg::format_shape(shape));
    Tensor f(DType::f32, shape);
    Tensor n(DType::i32, shape);
    for (size_t i = 0; i < f.size(); ++i) {
      f.mutable_data<float>()[i] = -1.5f + 0.5f * i;
      n.mutable_data<int32_t>()[i] = static_cast<int32_t>(i * 1000003) - 7;
    }
    fg::write_npy(dir.file("f.npy"), f);
    fg::write_npy(dir.file("n.npy"), n);
    Tensor f2 = fg::read_npy(dir.file("f.npy"), DType::f32);
    Tensor n2 = fg::read_npy(dir.file("n.npy"), DType::i32);
    CHECK(f2.shape() == shape);
    CHECK(n2.shape() == shape);
    CHECK(f2.dtype() == DType::f32);
    CHECK(n2.dtype() == DType::i32);
    for (size_t i = 0; i < f.size(); ++i) {
      CHECK(f2.data<float>()[i] == f.data<float>()[i]);
      CHECK(n2.data<int32_t>()[i] == n.data<int32_t>()[i]);
    }
  }
}

TEST_CASE("write_npy writes a numpy-style 1.0 header padded to 64 bytes") {
  TempDir dir;
  Tensor t(DType::f32, {3});
  fg::write_npy(dir.file("t.npy"), t);
  std::string bytes = fg::test::read_bytes(dir.file("t.npy"));
  REQUIRE(bytes.size() > 10);
  CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  size_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9])
                                                                 << 8;
  CHECK((10 + header_len) % 64 == 0);
  std::string header = bytes.substr(10, header_len);
  CHECK(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 0) == 0);
  CHECK(header.back() == '\n');
  CHECK(bytes.size() == 10 + header_len + 12);
  CHECK(dir.entries() == std::vector<std::string>{"t.npy"});
}

TEST_CASE("npy reader accepts versions 2.0 and 3.0, other dtypes and numpy's spellings") {
  TempDir dir;
  std::vector<double> f8{1.5, -2.25, 1e30, 0.1};
  std::vector<int64_t> i8{-5, 0, 2147483647, -2147483648LL};
  std::vector<int32_t> i4{3, -4, 16777217, 9};

  write_bytes(dir.file("v2.npy"), npy_file(dict("<f8", "(2, 2)"), raw_of(f8), 2));
  Tensor a = fg::read_npy(dir.file("v2.npy"), DType::f32);
  CHECK(a.shape() == fg::Dims{2, 2});
  for (size_t i = 0; i < 4; ++i) CHECK(a.data<float>()[i] == static_cast<float>(f8[i]));

  write_bytes(dir.file("v3.npy"), npy_file(dict("<i8", "(4,)"), raw_of(i8), 3));
  Tensor b = fg::read_npy(dir.file("v3.npy"), DType::i32);
  for (size_t i = 0; i < 4; ++i) CHECK(b.data<int32_t>()[i] == i8[i]);

  write_bytes(dir.file("i4f.npy"), npy_file(dict("=i4", "(4,)"), raw_of(i4)));
  Tensor c = fg::read_npy(dir.file("i4f.npy"), DType::f32);
  for (size_t i = 0; i < 4; ++i) CHECK(c.data<float>()[i] == static_cast<float>(i4[i]));

  // double quotes, keys in another order, Python 2 longs, no trailing comma
  write_bytes(
      dir.file("py2.npy"),
      npy_file(R"({"shape": (2L, 2L), "fortran_order": False, "descr": "<i4"})", raw_of(i4)));
  Tensor d = fg::read_npy(dir.file("py2.npy"), DType::i32);
  CHECK(d.shape() == fg::Dims{2, 2});
  CHECK(d.data<int32_t>()[2] == 16777217);
}

TEST_CASE("malformed npy files give clear errors") {
  TempDir dir;
  std::vector<float> f3{1, 2, 3};
  std::vector<int64_t> big{1, 4294967296LL};
  std::string v1 = npy_file(dict("<f4", "(3,)"), raw_of(f3));
  std::string bad_version = v1;
  bad_version[6] = 4;
  struct Case {
    std::string name, bytes;
    DType want;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {"wrong magic", "PK\x03\x04" + v1.substr(4), DType::f32, {"not an .npy file", "magic"}},
      {"three bytes", "\x93NU", DType::f32, {"not an .npy file", "only 3 bytes"}},
      {"unknown version",
       bad_version,
       DType::f32,
       {"unsupported .npy format version 4.0", "1.0, 2.0 or 3.0"}},
      {"lying header",
       npy_file(dict("<f4", "(10,)"), raw_of(f3)),
       DType::f32,
       {"shape (10,)", "needs 40 bytes", "the file has 12", "lying header"}},
      {"trailing garbage",
       v1 + "junk",
       DType::f32,
       {"4 bytes of trailing garbage", "needs 12 bytes", "found 16"}},
      {"fortran order",
       npy_file(dict("<f4", "(3,)", "True"), raw_of(f3)),
       DType::f32,
       {"Fortran-order", "ascontiguousarray"}},
      {"big-endian",
       npy_file(dict(">f4", "(3,)"), raw_of(f3)),
       DType::f32,
       {"big-endian dtype '>f4'", "'<f4'"}},
      {"float16",
       npy_file(dict("<f2", "(6,)"), raw_of(f3)),
       DType::f32,
       {"unsupported dtype '<f2'", "'<f4', '<f8', '<i4', '<i8'"}},
      {"object dtype",
       npy_file(dict("|O", "(3,)"), raw_of(f3)),
       DType::f32,
       {"unsupported dtype '|O'"}},
      {"no byte order",
       npy_file(dict("|i4", "(3,)"), raw_of(f3)),
       DType::i32,
       {"'|i4'", "ambiguous"}},
      {"unclosed dict",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ", raw_of(f3)),
       DType::f32,
       {"malformed header", "expected"}},
      {"missing shape",
       npy_file("{'descr': '<f4', 'fortran_order': False}", raw_of(f3)),
       DType::f32,
       {"no 'shape' key"}},
      {"unexpected key",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", raw_of(f3)),
       DType::f32,
       {"unexpected key 'x'"}},
      {"duplicate key",
       npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
                raw_of(f3)),
       DType::f32,
       {"duplicate key 'descr'"}},
      {"negative dim",
       npy_file(dict("<f4", "(-3,)"), raw_of(f3)),
       DType::f32,
       {"negative dimension"}},
      {"bad bool",
       npy_file(dict("<f4", "(3,)", "0"), raw_of(f3)),
       DType::f32,
       {"expected True or False"}},
      {"header length past the end",
       std::string("\x93NUMPY\x01\x00\xff\x00{", 11),
       DType::f32,
       {"header length says 255 bytes", "only 1 bytes follow"}},
      {"floats as int32",
       v1,
       DType::i32,
       {"expected int32 data", "'<f4'", "not converted to int32"}},
      {"int64 out of int32 range",
       npy_file(dict("<i8", "(2,)"), raw_of(big)),
       DType::i32,
       {"value 4294967296 at flat index 1", "does not fit into int32"}},
      {"overflowing shape",
       npy_file(dict("<f4", "(4294967296, 4294967296, 4294967296)"), raw_of(f3)),
       DType::f32,
       {"too many elements"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    INFO("case: " << c.name);
    const std::string path = dir.file("bad" + std::to_string(i) + ".npy");
    write_bytes(path, c.bytes);
    std::vector<std::string> words = c.words;
    words.push_back(path);
    check_error([&] { fg::read_npy(path, c.want); }, words);
  }
}

TEST_CASE("npy errors name the graph input") {
  TempDir dir;
  std::vector<float> f3{1, 2, 3};
  write_bytes(dir.file("tokens.npy"), npy_file(dict("<f4", "(3,)"), raw_of(f3)));
  check_error([&] { fg::read_npy(dir.file("tokens.npy"), DType::i32, "tokens"); },
              {"tokens.npy", "input 'tokens'", "expected int32 data"});
  check_error([&] { fg::read_npy(dir.file("none.npy"), DType::f32, "image"); },
              {"none.npy", "cannot open"});
}

TEST_CASE("npy writes are atomic") {
  TempDir dir;
  Tensor t(DType::f32, {4});
  check_error([&] { fg::write_npy(dir.file("missing/dir/x.npy"), t); },
              {"cannot create temporary file"});
  std::filesystem::create_directory(dir.file("x.npy"));
  check_error([&] { fg::write_npy(dir.file("x.npy"), t); }, {"x.npy", "renaming"});
  CHECK(dir.entries() == std::vector<std::string>{"x.npy"});
  CHECK(std::filesystem::is_directory(dir.file("x.npy")));
}

TEST_CASE("npy files written by numpy read back, and ours load in numpy") {
  // the python3 on PATH may lack numpy while the system one (python3-numpy) has it
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    if (std::system((std::string(candidate) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) {
    MESSAGE("python3 with numpy is not available; skipping the cross-check");
    return;
  }
  TempDir dir;
  const std::string a = dir.file("np.npy"), b = dir.file("ours.npy");
  std::string script = python + " -c \"import numpy as np; np.save('" + a +
                       "', (np.arange(42, dtype=np.float64).reshape(6, 7) * 0.5 - 3)); "
                       "x = np.load('" +
                       b +
                       "'); "
                       "assert x.dtype == np.int32 and x.shape == (3, 2), (x.dtype, x.shape); "
                       "assert (x.ravel() == np.array([5, -6, 7, -8, 9, -10])).all(), x\"";
  Tensor ours(DType::i32, {3, 2});
  for (int i = 0; i < 6; ++i) ours.mutable_data<int32_t>()[i] = (i % 2 ? -1 : 1) * (i + 5);
  fg::write_npy(b, ours);
  REQUIRE(std::system(script.c_str()) == 0);
  Tensor t = fg::read_npy(a, DType::f32);
  CHECK(t.shape() == fg::Dims{6, 7});
  for (size_t i = 0; i < 42; ++i) CHECK(t.data<float>()[i] == static_cast<float>(i * 0.5 - 3));
}
