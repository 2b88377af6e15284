// The arithmetic precision a plan asks its ops for (CompileOptions::precision): f32 everywhere,
// bf16 in the ops that have bf16 kernels (dense, conv1d, conv2d: bf16 inputs and weights, f32
// accumulation and outputs), or int8 in the ops that have int8 kernels (dense, conv1d, conv2d:
// u8 / s8 inputs, s8 weights, s32 accumulation, f32 outputs; see kernels/int8_weights.hpp). An
// op that cannot run in the precision asked for runs in f32 and says so in
// KernelBuild::precision.
#pragma once

#include <string>
#include <vector>

namespace fg {

enum class Precision { f32, bf16, int8 };

// "f32", "bf16", "int8".
const char* precision_name(Precision precision);
// Every precision's name, in enum order (for messages and --help).
std::vector<std::string> precision_names();
// "f32" / "bf16" / "int8" -> the precision; anything else throws fg::Error listing the choices.
Precision parse_precision(const std::string& name);

}  // namespace fg
