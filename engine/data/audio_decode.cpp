// Decoding WAV, FLAC and OGG/Vorbis (and whatever else libsndfile reads) into interleaved
// floats. The file is read whole through RegularFile (regular files only, bounded size) and
// handed to libsndfile as virtual I/O over that memory, so a FIFO or a device never blocks and
// the decoder never sees the file system. The header is untrusted: channels, rate and the frame
// count are checked before anything is allocated, and the samples are read in chunks so that a
// header claiming more frames than the file holds allocates nothing for them.
#include <fmt/format.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/data/audio.hpp"
#include "framework/error.hpp"
#include "framework/regular_file.hpp"

namespace fg {

namespace {

// docs/data.md, "Audio": the limits on untrusted files.
constexpr uint64_t kMaxAudioFileBytes = uint64_t{1} << 30;  // 1 GiB
constexpr int64_t kMaxAudioChannels = 64;
constexpr int64_t kMaxAudioSamples = int64_t{1} << 31;  // frames * channels
constexpr int64_t kMaxSampleRate = 1'000'000;
constexpr sf_count_t kChunkFrames = 1 << 16;

// A file's bytes as libsndfile's virtual I/O.
struct MemoryFile {
  const std::string* bytes = nullptr;
  sf_count_t position = 0;
};

sf_count_t memory_length(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryFile*>(user)->bytes->size());
}

sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
  auto* file = static_cast<MemoryFile*>(user);
  const auto size = static_cast<sf_count_t>(file->bytes->size());
  sf_count_t base = 0;
  if (whence == SEEK_CUR) base = file->position;
  if (whence == SEEK_END) base = size;
  const sf_count_t target = base + offset;
  if (target < 0 || target > size) return -1;
  file->position = target;
  return target;
}

sf_count_t memory_read(void* dst, sf_count_t count, void* user) {
  auto* file = static_cast<MemoryFile*>(user);
  const auto size = static_cast<sf_count_t>(file->bytes->size());
  const sf_count_t n = std::max<sf_count_t>(0, std::min(count, size - file->position));
  if (n > 0) std::memcpy(dst, file->bytes->data() + file->position, static_cast<size_t>(n));
  file->position += n;
  return n;
}

sf_count_t memory_write(const void*, sf_count_t, void*) {
  return 0;
}

sf_count_t memory_tell(void* user) {
  return static_cast<MemoryFile*>(user)->position;
}

// Closes the SNDFILE on every path out.
struct SndFileCloser {
  SNDFILE* file;
  ~SndFileCloser() {
    if (file) sf_close(file);
  }
};

void check_header(const SF_INFO& info, const std::string& path) {
  if (info.channels < 1 || info.channels > kMaxAudioChannels)
    throw Error(fmt::format("the audio header declares {} channels; 1 to {} are accepted",
                            info.channels, kMaxAudioChannels))
        .in_file(path);
  if (info.samplerate < 1 || info.samplerate > kMaxSampleRate)
    throw Error(fmt::format("the audio header declares a sample rate of {} Hz; 1 to {} are "
                            "accepted",
                            info.samplerate, kMaxSampleRate))
        .in_file(path);
  // SF_COUNT_MAX: the length is unknown (an OGG without its last page); the chunked read
  // below still stops at the limit
  if (info.frames == SF_COUNT_MAX) return;
  if (info.frames < 0 || info.frames > kMaxAudioSamples / info.channels)
    throw Error(fmt::format("the audio header declares {} frames of {} channels, more than the "
                            "limit of {} samples",
                            info.frames, info.channels, kMaxAudioSamples))
        .in_file(path)
        .hint("see docs/data.md, \"Audio\"");
}

// Reads every frame, a chunk at a time; the header's count only sizes the first reservation.
std::vector<float> read_all_frames(SNDFILE* file, const SF_INFO& info, const std::string& path) {
  const int64_t channels = info.channels;
  std::vector<float> samples;
  samples.reserve(static_cast<size_t>(std::min<int64_t>(info.frames, kChunkFrames) * channels));
  std::vector<float> chunk(static_cast<size_t>(kChunkFrames * channels));
  for (;;) {
    const sf_count_t got = sf_readf_float(file, chunk.data(), kChunkFrames);
    if (got <= 0) break;
    if (static_cast<int64_t>(samples.size()) + got * channels > kMaxAudioSamples)
      throw Error(fmt::format("the audio has more than {} samples", kMaxAudioSamples))
          .in_file(path);
    samples.insert(samples.end(), chunk.begin(), chunk.begin() + got * channels);
  }
  if (sf_error(file) != SF_ERR_NO_ERROR)
    throw Error(fmt::format("cannot decode the audio: {}", sf_strerror(file))).in_file(path);
  return samples;
}

uint32_t read_le32(const std::string& bytes, uint64_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// libsndfile reads a WAV whose data chunk is cut short as a shorter file (it only logs the
// mismatch); a truncated file is an error here. Sizes 0 and 0xFFFFFFFF are the placeholders of
// streamed WAVs and are accepted.
void check_wav_not_truncated(const std::string& bytes, const std::string& path) {
  const uint64_t size = bytes.size();
  if (size < 12 || bytes.compare(0, 4, "RIFF") != 0 || bytes.compare(8, 4, "WAVE") != 0) return;
  uint64_t at = 12;
  while (at + 8 <= size) {
    const uint64_t length = read_le32(bytes, at + 4);
    if (bytes.compare(at, 4, "data") == 0) {
      const uint64_t present = size - (at + 8);
      if (length != 0 && length != 0xFFFFFFFFu && length > present)
        throw Error(fmt::format("the WAV file is truncated: its data chunk declares {} bytes, "
                                "the file holds {}",
                                length, present))
            .in_file(path);
      return;
    }
    at += 8 + length + (length & 1);
  }
}

void check_finite(const std::vector<float>& samples, int64_t channels, const std::string& path) {
  const auto bad =
      std::find_if(samples.begin(), samples.end(), [](float v) { return !std::isfinite(v); });
  if (bad == samples.end()) return;
  const int64_t index = bad - samples.begin();
  throw Error(fmt::format("sample {} of channel {} is {} (a float file with non-finite values)",
                          index / channels, index % channels, *bad))
      .in_file(path);
}

}  // namespace

DecodedAudio decode_audio_file(const std::string& path) {
  const std::string bytes = read_regular_file(path, kMaxAudioFileBytes);
  if (bytes.empty()) throw Error("the audio file is empty (0 bytes)").in_file(path);
  check_wav_not_truncated(bytes, path);
  MemoryFile memory{&bytes, 0};
  SF_VIRTUAL_IO io{memory_length, memory_seek, memory_read, memory_write, memory_tell};
  SF_INFO info{};
  SndFileCloser file{sf_open_virtual(&io, SFM_READ, &info, &memory)};
  if (!file.file)
    throw Error(fmt::format("cannot decode the audio: {}", sf_strerror(nullptr)))
        .in_file(path)
        .hint("WAV, FLAC and OGG/Vorbis files are read (libsndfile)");
  check_header(info, path);
  DecodedAudio out;
  out.sample_rate = info.samplerate;
  out.channels = info.channels;
  out.samples = read_all_frames(file.file, info, path);
  if (out.samples.empty() && info.frames == SF_COUNT_MAX)
    throw Error(
        "cannot decode the audio: libsndfile reads no samples and cannot tell its length "
        "(a truncated file?)")
        .in_file(path);
  if (out.samples.empty()) throw Error("the audio file has no samples").in_file(path);
  check_finite(out.samples, out.channels, path);
  return out;
}

}  // namespace fg
