// The recurrence of the lstm op's projected inference path (see layers/recurrent.hpp): one batch
// row, every step, from the input projections x_t W + b that one matmul computed for all steps.
// Per step: gates = projection_t + h U (U: the recurrent kernel [units, 4 units], row major, read
// in column blocks kept in registers), then the Keras cell (gate order i, f, c, o).
// AVX2 + FMA when the CPU has them (checked once at run time; the functions are compiled for
// that target with a function attribute, so the rest of the library keeps its baseline ISA),
// with vectorised tanh / sigmoid for the default activation pair; else plain loops and the
// activations' scalar formulas (layers/recurrent.cpp's table).
#include <algorithm>
#include <cstring>

#include "layers/recurrent.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FG_LSTM_LOOP_X86 1
#endif

namespace fg::layers {
namespace {

// gates[j] = projection[j] + sum_k h[k] * recurrent[k, j], j < GU (plain loops).
void lstm_gates_plain(const float* projection, const float* recurrent, const float* h, float* gates,
                      int64_t units, int64_t gu) {
  std::copy(projection, projection + gu, gates);
  for (int64_t k = 0; k < units; ++k) {
    const float hk = h[k];
    const float* row = recurrent + k * gu;
    for (int64_t j = 0; j < gu; ++j) gates[j] += hk * row[j];
  }
}

// c = f * c + i * act(g_c), h = o * act(c), with i, f, o = rec_act(...) (Keras's LSTM cell).
void lstm_cell_plain(const float* gates, float* c, float* h, int64_t units, ActFn act,
                     ActFn rec_act) {
  const int64_t U = units;
  for (int64_t j = 0; j < U; ++j) {
    const float i = rec_act(gates[j]);
    const float f = rec_act(gates[U + j]);
    const float cc = act(gates[2 * U + j]);
    const float o = rec_act(gates[3 * U + j]);
    c[j] = f * c[j] + i * cc;
    h[j] = o * act(c[j]);
  }
}

#ifdef FG_LSTM_LOOP_X86
#define FG_AVX2_FMA __attribute__((target("avx2,fma")))

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// exp(x) - 1, accurate near 0 (relative error a few ulp; x clamped to [-87, 88], where the
// results are -1 up to 1e-38 and 1.6e38): x = n ln2 + r, |r| <= ln2 / 2 (ln2 split in a high
// part with few bits and a low part, so n ln2_hi is exact), expm1(r) by its Taylor series to
// r^7 (truncation < 5e-9 relative), then 2^n expm1(r) + (2^n - 1).
FG_AVX2_FMA inline __m256 expm1_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.f)), _mm256_set1_ps(88.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.f / 5040.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256 em1_r = _mm256_mul_ps(p, r);  // expm1(r)
  const __m256 scale = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  return _mm256_fmadd_ps(em1_r, scale, _mm256_sub_ps(scale, _mm256_set1_ps(1.f)));
}

// sigmoid(x) = 1 / (2 + expm1(-x)).
FG_AVX2_FMA inline __m256 sigmoid_avx2(__m256 x) {
  const __m256 e = expm1_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(2.f), e));
}

// tanh(x) = expm1(2x) / (expm1(2x) + 2) (exact to float rounding near 0, +-1 beyond |x| ~ 9).
FG_AVX2_FMA inline __m256 tanh_avx2(__m256 x) {
  const __m256 e = expm1_avx2(_mm256_add_ps(x, x));
  return _mm256_div_ps(e, _mm256_add_ps(e, _mm256_set1_ps(2.f)));
}

// gates = projection + h U: 64 columns at a time in 8 accumulators (enough independent FMAs to
// hide their latency), then 8 at a time, then single columns.
FG_AVX2_FMA void lstm_gates_avx2(const float* projection, const float* recurrent, const float* h,
                                 float* gates, int64_t units, int64_t gu) {
  int64_t j = 0;
  for (; j + 64 <= gu; j += 64) {
    __m256 acc[8];
    for (int q = 0; q < 8; ++q) acc[q] = _mm256_loadu_ps(projection + j + 8 * q);
    const float* row = recurrent + j;
    for (int64_t k = 0; k < units; ++k, row += gu) {
      const __m256 hk = _mm256_broadcast_ss(h + k);
      for (int q = 0; q < 8; ++q)
        acc[q] = _mm256_fmadd_ps(hk, _mm256_loadu_ps(row + 8 * q), acc[q]);
    }
    for (int q = 0; q < 8; ++q) _mm256_storeu_ps(gates + j + 8 * q, acc[q]);
  }
  for (; j + 8 <= gu; j += 8) {
    __m256 acc = _mm256_loadu_ps(projection + j);
    const float* row = recurrent + j;
    for (int64_t k = 0; k < units; ++k, row += gu)
      acc = _mm256_fmadd_ps(_mm256_broadcast_ss(h + k), _mm256_loadu_ps(row), acc);
    _mm256_storeu_ps(gates + j, acc);
  }
  for (; j < gu; ++j) {
    float s = projection[j];
    for (int64_t k = 0; k < units; ++k) s += h[k] * recurrent[k * gu + j];
    gates[j] = s;
  }
}

// The cell with tanh / sigmoid, 8 units at a time (the last group through masked loads and
// stores, which touch no memory beyond `units`).
FG_AVX2_FMA void lstm_cell_tanh_sigmoid_avx2(const float* gates, float* c, float* h,
                                             int64_t units) {
  const int64_t U = units;
  for (int64_t j = 0; j < U; j += 8) {
    const int64_t left = std::min<int64_t>(8, U - j);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 i = sigmoid_avx2(_mm256_maskload_ps(gates + j, mask));
    const __m256 f = sigmoid_avx2(_mm256_maskload_ps(gates + U + j, mask));
    const __m256 cc = tanh_avx2(_mm256_maskload_ps(gates + 2 * U + j, mask));
    const __m256 o = sigmoid_avx2(_mm256_maskload_ps(gates + 3 * U + j, mask));
    const __m256 cn = _mm256_fmadd_ps(f, _mm256_maskload_ps(c + j, mask), _mm256_mul_ps(i, cc));
    _mm256_maskstore_ps(c + j, mask, cn);
    _mm256_maskstore_ps(h + j, mask, _mm256_mul_ps(o, tanh_avx2(cn)));
  }
}
#endif

}  // namespace

void run_lstm_row(const LstmLoop& loop, const float* projection, const uint8_t* mask, float* dst,
                  float* scratch) {
  const int64_t U = loop.units, GU = 4 * U, T = loop.steps;
  float* h = scratch;
  float* c = h + U;
  float* gates = c + U;
  std::fill(h, h + 2 * U, 0.f);
#ifdef FG_LSTM_LOOP_X86
  const bool avx2 = cpu_has_avx2_fma();
  const bool fast_cell = avx2 && loop.tanh_sigmoid;
#endif
  for (int64_t t = 0; t < T; ++t) {
    const bool valid = mask == nullptr || mask[t] != 0;
    if (valid) {
      const float* proj_t = projection + t * GU;
#ifdef FG_LSTM_LOOP_X86
      if (avx2)
        lstm_gates_avx2(proj_t, loop.recurrent, h, gates, U, GU);
      else
        lstm_gates_plain(proj_t, loop.recurrent, h, gates, U, GU);
      if (fast_cell)
        lstm_cell_tanh_sigmoid_avx2(gates, c, h, U);
      else
        lstm_cell_plain(gates, c, h, U, loop.act, loop.rec_act);
#else
      lstm_gates_plain(proj_t, loop.recurrent, h, gates, U, GU);
      lstm_cell_plain(gates, c, h, U, loop.act, loop.rec_act);
#endif
    }
    if (loop.return_sequences) {
      float* out = dst + t * U;
      if (valid || !loop.zero_output_for_mask)
        std::memcpy(out, h, static_cast<size_t>(U) * sizeof(float));
      else
        std::memset(out, 0, static_cast<size_t>(U) * sizeof(float));
    }
  }
  if (!loop.return_sequences) {
    const bool last_masked = mask != nullptr && T > 0 && mask[T - 1] == 0;
    if (loop.zero_output_for_mask && last_masked)
      std::memset(dst, 0, static_cast<size_t>(U) * sizeof(float));
    else
      std::memcpy(dst, h, static_cast<size_t>(U) * sizeof(float));
  }
}

}  // namespace fg::layers
