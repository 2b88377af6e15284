// bench-data --synthetic: a data set of the reference graph's shapes written at run time
// (224x224 RGB JPEGs with libjpeg, 1 s 16 kHz mono WAVs with libsndfile, short texts), with a
// table over them and a graph whose `preprocessing:` reads them (docs/performance.md,
// "Pipeline speed").
#pragma once

#include <cstdint>
#include <string>

namespace fg::cli {

struct SyntheticMedia {
  std::string graph;  // DIR/graph.yaml
  std::string table;  // DIR/data.csv: columns image, audio, text, label
  int64_t samples = 0;
};

// Writes `samples` rows into `dir` (created; existing files of the same names are replaced).
// Deterministic in `seed`. Throws fg::Error naming the file that cannot be written.
SyntheticMedia write_synthetic_media(const std::string& dir, int64_t samples, uint64_t seed);

}  // namespace fg::cli
