// Decoding WAV (16-bit, 24-bit, float, stereo), FLAC and OGG/Vorbis files written by libsndfile,
// and the bad files: missing, empty, truncated, random bytes, no samples, absurd headers.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"
#include "tests/data/test_audio_files.hpp"

namespace fg::test {
namespace {

// The message of the fg::Error `f` throws ("" when it does not throw).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("audio decode: 16-bit PCM WAV and FLAC are exact (value / 32768)") {
  TempDir dir;
  std::vector<short> values(1001);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<short>((static_cast<int>(i) * 7919) % 65536 - 32768);
  for (int format : {SF_FORMAT_WAV | SF_FORMAT_PCM_16, SF_FORMAT_FLAC | SF_FORMAT_PCM_16}) {
    const std::string path = dir.file(format & SF_FORMAT_FLAC ? "a.flac" : "a.wav");
    write_short_file(path, format, 22050, 1, values);
    const DecodedAudio audio = decode_audio_file(path);
    CHECK(audio.sample_rate == 22050);
    CHECK(audio.channels == 1);
    REQUIRE(audio.frames() == 1001);
    for (size_t i = 0; i < values.size(); ++i)
      REQUIRE(audio.samples[i] == static_cast<float>(values[i] / 32768.0));
  }
}

TEST_CASE("audio decode: 24-bit stereo WAV keeps both channels exactly (value / 2^23)") {
  TempDir dir;
  const int64_t frames = 13;
  std::vector<int> values(frames * 2);
  for (int64_t f = 0; f < frames; ++f) {
    values[2 * f] = static_cast<int>((f * 611953 % 16777216) - 8388608) * 256;  // left
    values[2 * f + 1] = static_cast<int>(-f * 1000 - 1) * 256;                  // right
  }
  const std::string path = dir.file("s24.wav");
  write_int_file(path, SF_FORMAT_WAV | SF_FORMAT_PCM_24, 48000, 2, values);
  const DecodedAudio audio = decode_audio_file(path);
  CHECK(audio.channels == 2);
  REQUIRE(audio.frames() == frames);
  for (int64_t i = 0; i < 2 * frames; ++i)
    REQUIRE(audio.samples[i] == static_cast<float>((values[i] / 256) / 8388608.0));
}

TEST_CASE("audio decode: float WAV is exact, values beyond [-1, 1] included") {
  TempDir dir;
  std::vector<float> values = noise(127 * 3, 5);
  values[4] = 1.5f;
  const std::string path = dir.file("f.wav");
  write_float_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 8000, 3, values);
  const DecodedAudio audio = decode_audio_file(path);
  CHECK(audio.channels == 3);
  CHECK(audio.sample_rate == 8000);
  CHECK(audio.samples == values);
}

TEST_CASE("audio decode: OGG/Vorbis is close to the written sine") {
  TempDir dir;
  const std::vector<float> values = sine(8000, 440.0, 16000.0, 0.5);
  const std::string path = dir.file("a.ogg");
  write_float_file(path, SF_FORMAT_OGG | SF_FORMAT_VORBIS, 16000, 1, values);
  const DecodedAudio audio = decode_audio_file(path);
  CHECK(audio.sample_rate == 16000);
  REQUIRE(audio.frames() == 8000);
  double error = 0.0, energy = 0.0;
  for (size_t i = 0; i < values.size(); ++i) {
    error += std::pow(audio.samples[i] - values[i], 2);
    energy += std::pow(values[i], 2);
  }
  CHECK(std::sqrt(error / energy) < 0.05);  // lossy: within 5 % RMS
}

TEST_CASE("audio decode: a missing file, a directory and an empty file name the file") {
  TempDir dir;
  const std::string missing = dir.file("missing.wav");
  std::string message = error_of([&] { decode_audio_file(missing); });
  CHECK(message.find(missing) != std::string::npos);
  message = error_of([&] { decode_audio_file(dir.path().string()); });
  CHECK(message.find("directory") != std::string::npos);
  const std::string empty = dir.file("empty.wav");
  write_bytes(empty, "");
  message = error_of([&] { decode_audio_file(empty); });
  CHECK(message.find(empty) != std::string::npos);
  CHECK(message.find("empty") != std::string::npos);
}

TEST_CASE("audio decode: random bytes get libsndfile's message and the file") {
  TempDir dir;
  const std::string path = dir.file("noise.wav");
  std::string bytes(4096, '\0');
  const std::vector<float> r = noise(4096, 9);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(r[i] * 127.0f);
  write_bytes(path, bytes);
  const std::string message = error_of([&] { decode_audio_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("cannot decode the audio") != std::string::npos);
}

TEST_CASE("audio decode: a WAV cut at any length is an error naming the file") {
  TempDir dir;
  const std::string whole = dir.file("whole.wav");
  write_short_file(whole, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 2,
                   std::vector<short>(2 * 500, 1000));
  const std::string bytes = read_bytes(whole);
  REQUIRE(bytes.size() == 44 + 2000);
  const std::string cut = dir.file("cut.wav");
  for (size_t length : {1, 4, 11, 12, 20, 36, 40, 43, 44, 45, 47, 100, 1001, 2043}) {
    CAPTURE(length);
    write_bytes(cut, bytes.substr(0, length));
    const std::string message = error_of([&] { decode_audio_file(cut); });
    CHECK(message.find(cut) != std::string::npos);
  }
  write_bytes(cut, bytes.substr(0, 1001));
  CHECK(error_of([&] { decode_audio_file(cut); }).find("truncated") != std::string::npos);
}

// OGG files cut after their first page are left out: libvorbis 1.3.7 leaks 5784 bytes when
// such a file fails to open (xiph/vorbis#125), which LeakSanitizer builds report.
TEST_CASE("audio decode: truncated FLAC and OGG files never crash") {
  TempDir dir;
  const std::vector<float> values = sine(4000, 300.0, 8000.0, 0.5);
  for (int format : {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, SF_FORMAT_OGG | SF_FORMAT_VORBIS}) {
    const bool ogg = (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG;
    const std::string whole = dir.file("whole.snd");
    write_float_file(whole, format, 8000, 1, values);
    const std::string bytes = read_bytes(whole);
    const std::string cut = dir.file("cut.snd");
    std::vector<size_t> lengths = {3, 40, bytes.size() - 1};
    if (!ogg) lengths.insert(lengths.end(), {100, bytes.size() / 3, bytes.size() / 2});
    for (size_t length : lengths) {
      CAPTURE(length);
      write_bytes(cut, bytes.substr(0, length));
      try {
        const DecodedAudio audio = decode_audio_file(cut);
        CHECK(audio.frames() <= 4000);
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find(cut) != std::string::npos);
      }
      if (ogg && length == bytes.size() - 1)  // libsndfile cannot tell the length: no samples
        CHECK_THROWS_AS(decode_audio_file(cut), Error);
    }
  }
}

TEST_CASE("audio decode: a WAV with zero samples is an error") {
  TempDir dir;
  const std::string path = dir.file("silent.wav");
  write_short_file(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, {});
  const std::string message = error_of([&] { decode_audio_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("no samples") != std::string::npos);
}

// A 16-bit PCM WAV header written by hand, with the fields a hostile file could lie about.
std::string wav_header(uint32_t channels, uint32_t rate, uint32_t data_bytes) {
  std::string h;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) h += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto u16 = [&](uint32_t v) {
    for (int i = 0; i < 2; ++i) h += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  h += "RIFF";
  u32(36 + data_bytes);
  h += "WAVEfmt ";
  u32(16);
  u16(1);  // PCM
  u16(channels);
  u32(rate);
  u32(rate * channels * 2);
  u16(channels * 2);
  u16(16);
  h += "data";
  u32(data_bytes);
  return h;
}

TEST_CASE("audio decode: absurd channel counts and non-finite floats are refused") {
  TempDir dir;
  const std::string path = dir.file("wide.wav");
  write_bytes(path, wav_header(100, 16000, 200) + std::string(200, '\0'));
  std::string message = error_of([&] { decode_audio_file(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("100 channels") != std::string::npos);

  std::vector<float> values(7, 0.25f);
  values[5] = std::nanf("");
  const std::string nan_path = dir.file("nan.wav");
  write_float_file(nan_path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, values);
  message = error_of([&] { decode_audio_file(nan_path); });
  CHECK(message.find(nan_path) != std::string::npos);
  CHECK(message.find("sample 5") != std::string::npos);
}

TEST_CASE("audio decode: a streamed WAV (data size 0xFFFFFFFF) is read to the end of file") {
  TempDir dir;
  const std::string path = dir.file("stream.wav");
  std::string data;
  for (int i = 0; i < 9; ++i) data += std::string{static_cast<char>(i), 0};
  write_bytes(path, wav_header(1, 16000, 0xFFFFFFFFu) + data);
  const DecodedAudio audio = decode_audio_file(path);
  REQUIRE(audio.frames() == 9);
  CHECK(audio.samples[8] == static_cast<float>(8 / 32768.0));
}

}  // namespace
}  // namespace fg::test
