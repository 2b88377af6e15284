// The preprocessed cache (`--cache DIR`, docs/data.md "Cache"): a table's samples, decoded and
// preprocessed once, stored as shards of .npy files (one per field per shard) with a manifest
// holding a checksum of what they were made from; later epochs and runs with the same checksum
// memory-map the shards instead of decoding again. A cache whose checksum differs is rebuilt,
// never used. Every file is written atomically (temporary + rename), the manifest last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/training/dataset.hpp"

namespace fg {

class Preprocessors;

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
// FNV-1a, 64 bits, continuing from `hash` (kFnvOffset to start).
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash);

// The checksum of a data set's samples: the source's content_key (a table's bytes and the size
// and modification time of each file it names), the preprocessing config and learnt state, and
// the fields (names, dtypes, shapes) — as 16 hex digits.
std::string cache_checksum(const std::string& source_path, const Preprocessors& preprocessors,
                           const Dataset& data);

// Samples of `data` from the cache in `dir` when its manifest's checksum is `checksum`; else
// builds it first (decoding every sample of `data` once on `workers` threads; with
// `skip_bad_rows` a sample that fails is left out and listed by skipped(), else its fg::Error is
// thrown). The result lists `data`'s skipped rows as well.
Dataset open_cached_dataset(const Dataset& data, const std::string& dir,
                            const std::string& checksum, int workers, bool skip_bad_rows);

}  // namespace fg
