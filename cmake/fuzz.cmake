# The libFuzzer targets (docs/fuzzing.md), included from the top-level CMakeLists.txt when
# FG_FUZZ is ON, in place of everything else: a fuzz build folder holds only these, so that the
# clang build stays small (scripts/fuzz.sh makes it in build-fuzz/).
#
#   fuzz_graph         YAML text -> load_graph_string, compile_graph, bind, summary, DOT
#   fuzz_safetensors   file bytes -> read_safetensors, WeightStore, validate against a graph
#   fuzz_npy           file bytes -> read_npy as float32 and as int32
#   fuzz_image         file bytes -> decode_image (PNG, JPEG), convert_channels, resize_image
#   fuzz_audio         file bytes -> decode_audio_file, resample_audio, downmix, mel spectrogram
#   fuzz_table         file bytes -> Table::read as .csv, .tsv and .jsonl, every cell
#
# The library sources they need are compiled once more with clang, instrumented for coverage
# (-fsanitize=fuzzer-no-link) and checked by AddressSanitizer and UndefinedBehaviorSanitizer;
# oneDNN, yaml-cpp and fmt are the system's, uninstrumented. OpenMP is left out: the targets
# run no kernel, and the `#pragma omp` loops of the layers compile serial.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FG_FUZZ needs clang (libFuzzer): "
                      "cmake -S . -B build-fuzz -DFG_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14")
endif()

find_package(dnnl 2.6 CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(Eigen3 3.3 CONFIG REQUIRED)
find_package(nlohmann_json 3.10 CONFIG QUIET)  # header-only; used by engine/ once it reads JSON

set(FG_FUZZ_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=all
                       -fno-omit-frame-pointer)
# Whatever CMAKE_BUILD_TYPE says: -O1 with line tables (stacks with file:line) compiles a quarter
# faster than -O2 -g, and asserts stay on (no -DNDEBUG).
string(TOUPPER "${CMAKE_BUILD_TYPE}" FG_FUZZ_CONFIG)
set(CMAKE_CXX_FLAGS_${FG_FUZZ_CONFIG} "-O1 -gline-tables-only")
# (-Wno-unused-variable: without OpenMP, a variable read only by an omp clause looks unused)
add_compile_options(-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
                    -Wno-unknown-pragmas -Wno-unused-variable)

# Everything below engine/'s readers: the plan, model and session (and the benchmarks) are not
# reached by any target. Removing a name that is not there is harmless.
file(GLOB FG_FUZZ_LIBRARY_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/framework/*.cpp ${PROJECT_SOURCE_DIR}/kernels/*.cpp
  ${PROJECT_SOURCE_DIR}/kernels/onednn/*.cpp ${PROJECT_SOURCE_DIR}/layers/*.cpp
  ${PROJECT_SOURCE_DIR}/engine/*.cpp ${PROJECT_SOURCE_DIR}/engine/data/*.cpp)
foreach(unused plan model session)
  list(REMOVE_ITEM FG_FUZZ_LIBRARY_SOURCES ${PROJECT_SOURCE_DIR}/engine/${unused}.cpp)
endforeach()
# the raw-data decoders' libraries (system, uninstrumented), by name as the main build links them
set(FG_FUZZ_DATA_LIBRARIES png16 jpeg sndfile samplerate fftw3f)

add_library(fusiongraph_fuzzed STATIC ${FG_FUZZ_LIBRARY_SOURCES}
  ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_entry_points.cpp)
target_include_directories(fusiongraph_fuzzed PUBLIC ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/include)
target_compile_options(fusiongraph_fuzzed PUBLIC -fsanitize=fuzzer-no-link ${FG_FUZZ_SANITIZERS})
target_link_libraries(fusiongraph_fuzzed PUBLIC DNNL::dnnl fmt::fmt yaml-cpp Eigen3::Eigen
  ${FG_FUZZ_DATA_LIBRARIES})
if(TARGET nlohmann_json::nlohmann_json)
  target_link_libraries(fusiongraph_fuzzed PUBLIC nlohmann_json::nlohmann_json)
endif()

foreach(target graph safetensors npy image audio table)
  add_executable(fuzz_${target} ${PROJECT_SOURCE_DIR}/tests/fuzz/targets/fuzz_${target}.cpp)
  target_link_libraries(fuzz_${target} PRIVATE fusiongraph_fuzzed)
  target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer ${FG_FUZZ_SANITIZERS})
endforeach()
